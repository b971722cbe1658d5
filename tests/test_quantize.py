"""int8: ISA-aware defaults, calibration through the runtime's preprocessing, and the accuracy budget."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from edgecls.export.metadata import read_contract_file
from edgecls.export.onnx_export import export_to_onnx
from edgecls.export.parity import onnx_logits
from edgecls.export.quant_data import ImageList, load_role_images
from edgecls.export.quant_isa import candidate_recipes, detect_isa
from edgecls.export.quantize import QuantizeOptions, quantize_model
from edgecls.runtime.contract import ModelContract
from edgecls.runtime.errors import ContractError, DataError
from fixtures_export import FAST_QUANT
from torch import nn

FLAGS = "fpu sse sse2 avx avx2 fma"


@pytest.mark.parametrize(
    ("cpuinfo", "machine", "isa", "act", "reduce_range"),
    [
        (f"flags\t: {FLAGS} avx512f avx512_vnni\n", "x86_64", "x86-vnni", "QUInt8", False),
        (f"flags\t: {FLAGS} avx_vnni\n", "x86_64", "x86-vnni", "QUInt8", False),
        (f"flags\t: {FLAGS}\n", "x86_64", "x86-avx2", "QUInt8", True),
        ("Features\t: fp asimd evtstrm aes crc32 asimddp\n", "aarch64", "arm-dotprod", "QInt8", False),
        ("Features\t: fp asimd\n", "aarch64", "arm", "QInt8", False),
    ],
)
def test_isa_detection_picks_the_recipe(cpuinfo, machine, isa, act, reduce_range):
    profile = detect_isa(cpuinfo, machine)
    assert profile.isa == isa
    first = candidate_recipes(profile)[0]
    assert (
        first.activation_type == act and first.weight_type == "QInt8" and first.reduce_range == reduce_range
    )
    assert first.per_channel and first.reason
    if isa == "x86-avx2":  # both saturation remedies are measured, not assumed
        assert [r.reduce_range for r in candidate_recipes(profile)] == [True, False]


def test_this_machine_is_detected():
    assert detect_isa().isa != "unknown" or sys.platform != "linux"


class _Outlier(nn.Module):
    """conv1 has one constant channel of 5000 that conv2 ignores: the shared per-tensor int8 range of conv1's
    output crushes the channels conv2 does use. Only keeping conv1 and conv2 in float together fixes it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)
        with torch.no_grad():
            self.conv1.weight[0] = 0
            self.conv1.bias[0] = 5000
            self.conv2.weight[:, 0] = 0
            self.head.weight *= 20

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(x.mean((2, 3)))


CONTRACT = ModelContract(labels=("a", "b", "c", "d"), input_size=(32, 32), resize_mode="stretch")


def _colour_images(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        np.clip(rng.integers(0, 256, (1, 1, 3)) + rng.normal(0, 8, (32, 32, 3)), 0, 255).astype(np.uint8)
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("outlier") / "model.onnx"
    export_to_onnx(_Outlier().eval(), CONTRACT, path, exporter="torchscript")
    return path


def _quantize(src, out, max_drop, log=lambda _m: None):
    calib = ImageList("colours", _colour_images(64, 0), None, [])
    val = ImageList("colours", _colour_images(64, 1), None, [])
    return quantize_model(src, out, calib, val, None, QuantizeOptions(max_drop=max_drop, **FAST_QUANT), log)


def test_budget_search_keeps_the_responsible_nodes_in_float(outlier_model, tmp_path):
    messages: list[str] = []
    report = _quantize(outlier_model, tmp_path / "q" / "model.int8.onnx", 5.0, messages.append)
    first = report.trials[0]
    assert first["drop_points"] > 5, "plain int8 should break this model"
    assert report.budget_met and report.metric == "agreement"
    assert set(report.nodes_kept_float) == {"/conv1/Conv", "/conv2/Conv"}
    assert report.sensitivity_top[0]["node"] == "/conv2/Conv"  # its float unit is (conv2, conv1)
    assert report.int8["agreement"] >= 0.95
    contract = read_contract_file(tmp_path / "q" / "model.int8.onnx")
    assert contract.provenance["quantization"]["nodes_kept_float"] == report.nodes_kept_float
    assert contract.provenance["quantization"]["budget_met"] is True
    saved = json.loads((tmp_path / "q" / "quantization_report.json").read_text())
    assert saved["nodes_kept_float"] == report.nodes_kept_float
    assert "within budget" in (tmp_path / "q" / "quantization_report.md").read_text()
    assert any("sensitivity" in m for m in messages)


def test_unreachable_budget_is_said_plainly_and_the_best_model_still_written(outlier_model, tmp_path):
    out = tmp_path / "model.int8.onnx"
    report = _quantize(outlier_model, out, -1.0)  # nothing can beat fp32 by a point
    assert not report.budget_met and out.is_file()
    assert (
        "BUDGET NOT MET" in report.verdict()
        and "BUDGET NOT MET" in (tmp_path / "quantization_report.md").read_text()
    )
    assert report.drop_points == min(t["drop_points"] for t in report.trials)


def test_labelled_budget_uses_top1_on_the_exported_run(exported_tiny):
    report = json.loads((exported_tiny / "quantization_report.json").read_text())
    assert report["metric"] == "top1" and report["fp32"]["top1"] is not None
    assert report["budget_met"] == (report["drop_points"] <= report["max_drop"])
    assert report["size_bytes"]["int8"] < report["size_bytes"]["fp32"]
    assert report["latency"]["int8"]["p50_ms"] > 0 and report["isa"]["isa"]
    assert report["calibration"]["source"].startswith("builtin:shapes")
    assert any("calibration images" in w for w in report["warnings"])  # 64 < 300 is warned about


def test_quantize_cli_on_a_model_with_contract(exported_tiny, tmp_path, shapes_folder, capsys):
    from test_export import _cli

    src = tmp_path / "m.onnx"
    shutil.copy(exported_tiny / "model.onnx", src)
    code, out, err = _cli(
        [
            "quantize",
            str(src),
            "--calib",
            str(shapes_folder),
            "--calib-images",
            "40",
            "--val-images",
            "40",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["metric"] == "top1"  # shapes_folder's class folders are the model's labels
    assert (tmp_path / "m.int8.onnx").is_file() and (tmp_path / "quantization_report.md").is_file()
    x = np.zeros((2, 3, 32, 32), np.float32)
    assert onnx_logits(tmp_path / "m.int8.onnx", x).shape == (2, 5)


def test_quantize_foreign_model_needs_flags(outlier_model, tmp_path, capsys):
    import onnx
    from test_export import _cli

    bare = onnx.load(str(outlier_model))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "foreign.onnx"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    import cv2

    for i, im in enumerate(_colour_images(12, 3)):
        cv2.imwrite(str(folder / f"{i}.png"), im)
    code, _, err = _cli(["quantize", str(tmp_path / "foreign.onnx"), "--calib", str(folder)], capsys)
    assert code == 2 and "no edgecls contract" in err
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\nd\n")
    code, _, err = _cli(
        [
            "quantize",
            str(tmp_path / "foreign.onnx"),
            "--calib",
            str(folder),
            "--labels",
            str(labels),
            "--img-size",
            "32",
            "--resize",
            "stretch",
            "--jpeg-decode",
            "full",
            "--max-drop",
            "100",
        ],
        capsys,
    )
    assert code == 0, err
    c = read_contract_file(tmp_path / "foreign.int8.onnx")
    assert c.labels == ("a", "b", "c", "d") and c.provenance["variant"] == "int8"
    assert c.jpeg_decode == "full"  # measured elsewhere on fully decoded images: the contract keeps it


def test_calibration_folder_without_readable_images(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8garbage")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="no readable image for calibration"):
        load_role_images(tmp_path, CONTRACT, "calibration")
    with pytest.raises(DataError, match="no such folder"):
        load_role_images(tmp_path / "missing", CONTRACT, "calibration")


def test_labelled_folder_maps_class_names_to_contract_indices(shapes_folder):
    contract = ModelContract(labels=("circle", "square", "triangle", "star", "cross"), input_size=(32, 32))
    images = load_role_images(shapes_folder, contract, "validation", limit=20)
    assert len(images) == 20 and images.labels is not None
    assert set(images.labels.tolist()) <= set(range(5))
    other = ModelContract(labels=("cat", "dog"), input_size=(32, 32))
    assert load_role_images(shapes_folder, other, "validation", limit=5).labels is None


def test_quantize_without_contract_or_flags_is_a_contract_error(outlier_model, tmp_path):
    import onnx

    bare = onnx.load(str(outlier_model))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ContractError):
        quantize_model(
            tmp_path / "bare.onnx",
            tmp_path / "o.onnx",
            ImageList("x", _colour_images(2, 0), None, []),
            ImageList("x", _colour_images(2, 0), None, []),
        )
    assert not (tmp_path / "o.onnx").exists()
