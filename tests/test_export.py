"""Export: ONNX files that carry their contract, match PyTorch, and fail cleanly on bad input."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from fixtures_cli import cli_in_process, leftovers
from fixtures_export import fast_export_options
from torch import nn

from edgecls.export.export_run import ExportOptions, export_checkpoint
from edgecls.export.metadata import contract_of, read_contract_file
from edgecls.export.onnx_export import export_to_onnx
from edgecls.export.parity import ParityError, check_parity
from edgecls.export.quant.options import Int8Images, QuantizeOptions
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.device.golden_file import read_golden
from edgecls.runtime.errors import ContractError, DataError, EdgeclsError
from edgecls.runtime.inference.preprocess import preprocess_batch
from edgecls.runtime.providers.session import create_session
from edgecls.training.checkpoint import load_checkpoint

CONTRACT = ModelContract(labels=("a", "b", "c"), input_size=(32, 32), resize_mode="stretch")


def test_export_writes_every_artifact_with_its_contract(exported_tiny, tiny_run):
    names = set(leftovers(exported_tiny))
    assert {"model.onnx", "model.int8.onnx", "model.fp16.onnx", "model.golden.npz", "export_report.json",
            "quantization_report.json", "quantization_report.md"} <= names
    assert not [n for n in names if n.startswith(".")], "temporary files left behind"
    ckpt = load_checkpoint(tiny_run)
    variants = {}
    for name in ("model.onnx", "model.int8.onnx", "model.fp16.onnx"):
        c = read_contract_file(exported_tiny / name)  # through onnxruntime, as the device reads it
        assert c is not None and c.labels == ckpt.contract.labels and c.input_size == ckpt.contract.input_size
        assert c.provenance["checkpoint_sha256"] == ckpt.sha256 and c.provenance["arch"] == "cnn"
        variants[c.provenance["variant"]] = c
    assert set(variants) == {"fp32", "int8", "fp16"}
    q = variants["int8"].provenance["quantization"]
    assert q["images"] == 64 and q["isa"] and q["method"].startswith("static QDQ")
    assert {"accuracy_change_points", "nodes_kept_float", "calibration"} <= set(q)


def test_fp32_graph_has_dynamic_batch_and_requested_opset(exported_tiny):
    model = onnx.load(str(exported_tiny / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 17
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value
    sess, _ = create_session(exported_tiny / "model.onnx", provider="cpu")
    for n in (1, 5):
        out = sess.run(None, {"input": np.zeros((n, 3, 32, 32), np.float32)})[0]
        assert out.shape == (n, 5)
    # The recorded parity numbers, against bounds tighter than the export's own gate (it raises past 1e-4):
    # fp32 onnxruntime vs PyTorch on a small CNN differs by float32 rounding (~1e-6), fp16 keeps every top-1.
    parity = {p["variant"]: p for p in json.loads((exported_tiny / "export_report.json").read_text())["parity"]}
    fp32, fp16 = parity["fp32"], parity["fp16"]
    assert fp32["images"] >= 8 and fp32["top1_mismatches"] == 0 and 0 <= fp32["max_abs_diff"] < 1e-5, fp32
    assert fp16["images"] == fp32["images"] and fp16["top1_mismatches"] == 0 and fp16["max_abs_diff"] < 0.05, fp16


def test_golden_file_format(exported_tiny):
    contract = contract_of(onnx.load(str(exported_tiny / "model.onnx")))
    g = read_golden(exported_tiny / "model.golden.npz", contract)  # the runtime's checked reader accepts it
    assert g.images.dtype == np.uint8 and g.images.shape[1:] == (64, 64, 3) and len(g.images) == 8
    assert g.inputs.dtype == np.float32 and g.inputs.shape == (8, 3, 32, 32)
    assert g.logits.dtype == np.float32 and g.logits.shape == (8, 5)
    assert g.labels == contract.labels
    np.testing.assert_array_equal(g.inputs, preprocess_batch(list(g.images), contract))
    sess, _ = create_session(exported_tiny / "model.onnx", provider="cpu")
    np.testing.assert_allclose(sess.run(None, {"input": g.inputs})[0], g.logits, atol=1e-4, rtol=0)


class _DataDependent(nn.Module):
    """Branches on a tensor value: torch.export refuses, the TorchScript tracer records one branch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).mean((2, 3))
        if y.abs().sum() >= 0:
            y = y * 2
        return self.fc(y)


def test_dynamo_failure_falls_back_to_torchscript(tmp_path):
    torch.manual_seed(0)
    model = _DataDependent().eval()
    result = export_to_onnx(model, CONTRACT, tmp_path / "m.onnx", exporter="auto")
    assert result.exporter == "torchscript" and result.fallback_reason
    images = [np.random.default_rng(i).integers(0, 255, (40, 30, 3), dtype=np.uint8) for i in range(4)]
    assert check_parity(model, result.path, images, CONTRACT).passed
    with pytest.raises(EdgeclsError, match="dynamo exporter failed"):
        export_to_onnx(model, CONTRACT, tmp_path / "d.onnx", exporter="dynamo")
    assert not (tmp_path / "d.onnx").exists()


class _ExportDiffers(nn.Module):
    """Computes something else while being exported: the parity check must catch it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x.mean((2, 3)))
        return y + 1.0 if torch.onnx.is_in_onnx_export() else y


def test_parity_failure_writes_nothing(tmp_path):
    from edgecls.export.export_run import ExportInputs, export_model
    from edgecls.export.quant.grading.image_sets import ImageList

    images = [np.full((32, 32, 3), v, np.uint8) for v in (10, 120, 240)]
    inputs = ExportInputs(ImageList("test", images, None, []))
    out = tmp_path / "out"
    with pytest.raises(ParityError, match="does not match PyTorch"):
        export_model(_ExportDiffers().eval(), CONTRACT, out, inputs, ExportOptions(exporter="torchscript"),
                     log=lambda _m: None)
    assert leftovers(out) == []


def test_missing_and_corrupt_checkpoints_are_one_line_errors(tmp_path, capsys):
    code, _, err = cli_in_process(["export", str(tmp_path / "nope")], capsys)
    assert code == 2 and err.startswith("error: ") and "no such checkpoint" in err and "Traceback" not in err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    code, _, err = cli_in_process(["export", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "not a readable checkpoint" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_unreadable_calibration_folder_fails_before_writing(tiny_run, tmp_path):
    junk = tmp_path / "calib"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"not a jpeg")
    (junk / "b.png").write_bytes(b"")
    out = tmp_path / "out"
    with pytest.raises(DataError, match="no readable image for calibration"):
        options = ExportOptions(out_dir=str(out), quantize=QuantizeOptions(), int8_images=Int8Images(calib=str(junk)))
        export_checkpoint(tiny_run, options, log=lambda _m: None)
    assert leftovers(out) == []


def test_export_from_checkpoint_file_with_parity_data_override(tiny_run, tmp_path, shapes_folder):
    out = tmp_path / "o"
    report = export_checkpoint(tiny_run / "best.pt", fast_export_options(out, data=str(shapes_folder),
                                                                         exporter="torchscript"),
                               log=lambda _m: None)
    assert report.exporter == "torchscript" and str(shapes_folder) in report.parity_images
    assert (out / "model.onnx").is_file() and (out / "model.golden.npz").is_file()
    assert not (out / "model.int8.onnx").exists()


def test_contract_label_mismatch_is_refused(tmp_path):
    wrong = CONTRACT.replace(labels=("a", "b"))
    with pytest.raises(EdgeclsError, match="labels must match"):
        export_to_onnx(_ExportDiffers().eval(), wrong, tmp_path / "m.onnx", exporter="torchscript")
    assert leftovers(tmp_path) == []


def test_metadata_roundtrip_keeps_other_entries(tmp_path):
    from edgecls.export.metadata import embed_contract

    model = onnx.load(str(export_to_onnx(_ExportDiffers().eval(), CONTRACT, tmp_path / "m.onnx",
                                         exporter="torchscript").path))
    extra = model.metadata_props.add()
    extra.key, extra.value = "other", "kept"
    embed_contract(model, CONTRACT.with_provenance(variant="x"))
    embed_contract(model, CONTRACT.with_provenance(variant="y"))
    keys = [p.key for p in model.metadata_props]
    assert keys.count("edgecls.contract") == 1 and "other" in keys
    assert contract_of(model).provenance["variant"] == "y"


def test_bad_contract_json_in_model_is_a_contract_error(tmp_path):
    from edgecls.runtime.contract.model_contract import METADATA_KEY

    model = onnx.load(str(export_to_onnx(_ExportDiffers().eval(), CONTRACT, tmp_path / "m.onnx",
                                         exporter="torchscript").path))
    for p in model.metadata_props:
        if p.key == METADATA_KEY:
            p.value = "{not json"
    with pytest.raises(ContractError):
        contract_of(model)


def test_contract_flags_are_for_model_exports_only(tiny_run, tmp_path, capsys):
    out = tmp_path / "o"
    code, _, err = cli_in_process(["export", str(tiny_run), "--input-size", "64", "--out", str(out)], capsys)
    assert code == 2 and "contract flags describe a --model" in err  # a run keeps the contract it trained with
    assert not out.exists()
    code, _, err = cli_in_process(["export", str(tiny_run), "--img-size", "64", "--out", str(out)], capsys)
    assert code == 2 and "No such option" in err  # the old spelling is gone
