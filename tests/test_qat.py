"""Quantization-aware fine-tuning (--qat): the fake int8 in the loop is onnxruntime's arithmetic, a run whose
post-training int8 misses the budget gets a QAT trial in the same search (kept when it measures better) and a
QAT int8 file in the same QDQ format, the report puts both trials side by side, and models edgecls did not train
are refused."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from fixtures_cli import cli_in_process, leftovers
from fixtures_export import USER_NET_PY
from fixtures_quant import skewed_copy
from torch import nn

from edgecls.training.qat import ActivationFakeQuant, WeightFakeQuant, fold_batchnorms


@pytest.mark.parametrize(("qmax", "reduce_range"), [(127, False), (64, True)])
def test_weight_fake_quant_is_onnxruntime_per_channel_rounding(qmax, reduce_range):
    from onnx import TensorProto
    from onnxruntime.quantization.quant_utils import quantize_data

    scales = torch.linspace(0.01, 3, 6)[:, None, None, None]  # channels of very different magnitude
    w = torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(0)) * scales
    ours = WeightFakeQuant(qmax)(w).numpy()
    for c in range(w.shape[0]):  # onnxruntime quantizes each output channel on its own (per_channel, axis 0)
        zero, scale, q = quantize_data(
            w[c].numpy().ravel(), TensorProto.INT8, symmetric=True, reduce_range=reduce_range
        )
        expected = (q.astype(np.float32) - zero) * scale
        np.testing.assert_allclose(ours[c].ravel(), expected, rtol=0, atol=1e-6 * float(scale))
    assert np.abs(ours - w.numpy()).max() > 1e-3  # really rounded, not a pass-through


def test_activation_fake_quant_is_onnxruntime_minmax_uint8():
    from onnx import TensorProto
    from onnxruntime.quantization.quant_utils import compute_scale_zp, get_qmin_qmax_for_qType

    batches = [torch.randn(4, 8, 5, 5, generator=torch.Generator().manual_seed(i)) * (i + 1) + 0.5 for i in range(3)]
    q = ActivationFakeQuant(signed=False)
    q.mode = "observe"
    for b in batches:
        q(b)
    q.mode = "quantize"
    x = torch.cat(batches)
    qmin, qmax = get_qmin_qmax_for_qType(TensorProto.UINT8)
    zero, scale = compute_scale_zp(np.float32(x.min()), np.float32(x.max()), qmin, qmax)
    expected = (np.clip(np.round(x.numpy() / scale) + zero, qmin, qmax) - zero) * scale
    np.testing.assert_allclose(q(x).numpy(), expected, atol=1e-5)


def test_folding_batchnorm_keeps_the_function():
    from edgecls.models.registry import build_model

    model = build_model("mobilenetv2_050", 4, 32).eval()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():  # statistics a trained network would have, not the identity of a fresh one
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    with torch.no_grad():
        before = model(x)
        folded, left = fold_batchnorms(model)
        after = model(x)
    assert folded > 0 and left == 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)


def test_qat_refuses_models_edgecls_did_not_train(tmp_path, capsys, tiny_run, shapes_folder):
    (tmp_path / "net.py").write_text(USER_NET_PY)
    (tmp_path / "labels.txt").write_text("cat\ndog\nbird\n")
    out = tmp_path / "out"
    argv = ["export", "--model", f"{tmp_path / 'net.py'}:build", "--labels", str(tmp_path / "labels.txt")]
    argv += ["--input-size", "32", "--quantize", "--calib", str(shapes_folder), "--qat", "1", "--out", str(out)]
    code, _, err = cli_in_process(argv, capsys)
    assert code == 2 and "--qat fine-tunes an edgecls training run" in err, err
    assert "Traceback" not in err and leftovers(out) == []  # refused before anything was written
    code, _, err = cli_in_process(["export", str(tiny_run), "--qat", "1", "--out", str(tmp_path / "o2")], capsys)
    assert code == 2 and "--qat fine-tunes for int8: it needs --quantize" in err, err
    assert leftovers(tmp_path / "o2") == []


@pytest.mark.slow
def test_qat_on_a_run_whose_post_training_int8_misses(tiny_run, tmp_path):
    from fixtures_export import fast_export_options

    from edgecls.export.export_run import export_checkpoint
    from edgecls.export.metadata import read_contract_file

    run = skewed_copy(tiny_run, tmp_path / "run", 100.0)
    out = tmp_path / "export"
    options = fast_export_options(out, quantize=True, qat_epochs=1, qat_lr=1e-3)
    report = export_checkpoint(run, options, log=lambda _m: None)  # type: ignore[arg-type]

    saved = json.loads((out / "quantization_report.json").read_text())
    assert saved["qat"]["epochs"] == 1 and report.qat == saved["qat"]  # post-training missed, so QAT ran
    assert {"history", "seconds", "simulated", "train_images"} <= set(saved["qat"])
    md = (out / "quantization_report.md").read_text()
    assert "## Quantization-aware fine-tuning" in md and "| epoch | loss |" in md
    # QAT's trial is a row of the same search, beside post-training's trial of the recipe it simulated, both
    # measured against the original fp32 model on the same search images; QAT closes part of the gap.
    qat_first = next(t for t in saved["trials"] if t["fine_tuned"])
    ptq_same = next(
        t for t in saved["trials"]
        if not t["fine_tuned"] and t["recipe"] == qat_first["recipe"].replace(", QAT-fine-tuned weights", "")
    )  # fmt: skip
    assert ptq_same["nodes_kept_float"] == qat_first["nodes_kept_float"] == 0
    assert qat_first["relative_error"] < 0.7 * ptq_same["relative_error"], (ptq_same, qat_first)
    assert qat_first["drop_points"] < ptq_same["drop_points"]
    # kept by the one keep rule, so what ships is made from the fine-tuned weights
    assert any(n.startswith("QAT (1 epochs) kept") for n in saved["repairs"]), saved["repairs"]
    assert saved["recipe"]["fine_tuned"] and not (out / "ptq").exists() and not (out / "qat").exists()

    # The published file is the same QDQ int8 ONNX the post-training path writes, and runs in onnxruntime.
    int8 = out / "model.int8.onnx"
    graph = onnx.load(str(int8))
    ops = {n.op_type for n in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [i for i in graph.graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4]
    # every conv the report does not keep float is int8
    assert len(int8_weights) == 6 - len(saved["nodes_kept_float"]) > 0
    contract = read_contract_file(int8)
    assert contract.provenance["variant"] == "int8" and contract.provenance["qat"]["epochs"] == 1
    sess = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {sess.get_inputs()[0].name: np.zeros((2, 3, 32, 32), np.float32)})[0]
    assert logits.shape == (2, len(contract.labels))
    assert saved["fusion"]["int8_convs"] > 0
