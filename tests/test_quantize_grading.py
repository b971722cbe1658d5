"""What int8 is calibrated and graded on: labelled folders and runs' splits (top-1), seeded disjoint splits of
unlabelled images, never the calibration images or a built-in set in place of the user's domain."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from fixtures_cli import cli_in_process
from fixtures_quant import CONTRACT, colour_images, image_folder

from edgecls.export.metadata import read_contract_file
from edgecls.export.parity import onnx_logits
from edgecls.export.quant.grading.image_sets import ImageList, load_role_images
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import DataError


def test_labelled_budget_uses_top1_on_the_exported_run(exported_tiny):
    report = json.loads((exported_tiny / "quantization_report.json").read_text())
    assert report["metric"] == "top1" and report["fp32"]["top1"] is not None
    # 48 held-out images: one answer is worth 2.08 points, over the 1-point budget: never "within budget"
    assert report["validation"]["holdout_images"] == 48 and report["status"] in ("unverified", "over budget")
    assert "95% interval" in report["verdict"] and report["interval_points"][1] > report["max_drop"]
    assert report["size_bytes"]["int8"] < report["size_bytes"]["fp32"]
    assert report["latency"]["int8"]["p50_ms"] > 0 and report["isa"]["isa"]
    assert report["calibration"]["source"].startswith("builtin:shapes")
    assert any("calibration images" in w for w in report["warnings"])  # 64 < 300 is warned about


def test_export_of_a_run_reports_int8_on_its_test_split(exported_tiny):
    """Issue 25 item 3: a run has a test split; int8 against fp32 there is reported (never used to choose)."""
    from edgecls.export.quant.grading.image_sets import images_from_run
    from edgecls.export.run_data import data_ref_of
    from edgecls.training.checkpoint import load_checkpoint

    report = json.loads((exported_tiny / "quantization_report.json").read_text())
    ckpt = load_checkpoint(json.loads((exported_tiny / "export_report.json").read_text())["source_checkpoint"])
    contract = read_contract_file(exported_tiny / "model.onnx")
    # at most val_images (96 in fast_export_options) of the test split, evenly spaced, as the export loads them
    test = images_from_run(data_ref_of(ckpt.raw, ckpt.path), "test", contract, 96)
    x = test.inputs(contract)
    fp32_top1 = float(np.mean(onnx_logits(exported_tiny / "model.onnx", x).argmax(1) == test.labels))
    int8_top1 = float(np.mean(onnx_logits(exported_tiny / "model.int8.onnx", x).argmax(1) == test.labels))
    got = report["test"]
    assert got["images"] == len(test) and "test split" in got["source"]
    assert got["fp32_top1"] == pytest.approx(fp32_top1) and got["int8_top1"] == pytest.approx(int8_top1)
    assert got["drop_points"] == pytest.approx(100 * (fp32_top1 - int8_top1), abs=1e-3)
    assert "test split" in (exported_tiny / "quantization_report.md").read_text()


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


def test_disjoint_split_is_seeded_and_shares_no_image():
    from edgecls.export.quant.grading.image_sets import split_disjoint

    images = ImageList("folder", colour_images(20, 5), None, [])
    a, b = split_disjoint(images, 0.5, ("calibration", "validation"))
    again, _ = split_disjoint(images, 0.5, ("calibration", "validation"))
    ids_a, ids_b = {id(x) for x in a.images}, {id(x) for x in b.images}
    assert len(a) == len(b) == 10 and not ids_a & ids_b and ids_a | ids_b == {id(x) for x in images.images}
    assert ids_a == {id(x) for x in again.images}  # same data, same split
    assert "calibration part: 10 of 20, seeded split 0" in a.source and "validation part" in b.source


def _assert_budget_decided_the_outcome(code: int, err: str, report: dict, int8_path) -> None:
    """The default 1-point budget, whichever way it went: met -> exit 0 and the int8 file; missed -> exit 3, none."""
    assert report["max_drop"] == 1.0 and report["budget_met"] is (report["drop_points"] <= 1.0)
    assert code == (0 if report["budget_met"] else 3), err
    assert int8_path.is_file() is report["budget_met"]


def test_byo_model_with_only_unlabelled_images_is_split_never_graded_on_shapes(tmp_path, capsys):

    (tmp_path / "net.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "def build():\n    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()\n"
    )
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    photos = image_folder(tmp_path / "photos", 40, 7)
    export = ["export", "--model", f"{tmp_path / 'net.py'}:build", "--labels", str(tmp_path / "labels.txt")]
    export += ["--input-size", "32", "--resize-mode", "stretch", "--exporter", "torchscript", "--quantize"]
    code, _, err = cli_in_process([*export, "--calib", "builtin:shapes", "--out", str(tmp_path / "o1")], capsys)
    assert code == 2 and "--val DATA" in err  # a built-in set is not the user's domain: refused
    code, _, err = cli_in_process([*export, "--calib", str(photos), "--out", str(tmp_path / "o2")], capsys)
    report = json.loads((tmp_path / "o2" / "quantization_report.json").read_text())
    _assert_budget_decided_the_outcome(code, err, report, tmp_path / "o2" / "model.int8.onnx")
    assert "split (seeded, disjoint) into 20 calibration and 20 validation images" in err
    assert "calibration part" in report["calibration"]["source"] and report["calibration"]["images"] == 20
    assert "validation part" in report["validation"]["source"] and "shapes" not in json.dumps(report)
    export = json.loads((tmp_path / "o2" / "export_report.json").read_text())
    assert "validation part" in export["parity_images"]


@pytest.mark.slow  # int8 search: 13 s at load 5-13
def test_quantize_without_val_never_grades_on_its_calibration_images(outlier_model, tmp_path, capsys):

    src = tmp_path / "m.onnx"
    shutil.copy(outlier_model, src)
    folder = image_folder(tmp_path / "imgs", 30, 9)
    code, _, err = cli_in_process(["quantize", str(src), "--calib", str(folder)], capsys)
    report = json.loads((tmp_path / "quantization_report.json").read_text())
    _assert_budget_decided_the_outcome(code, err, report, tmp_path / "m.int8.onnx")
    assert report["calibration"]["images"] == 15 and report["validation"]["images"] == 15
    assert "calibration part" in report["calibration"]["source"]
    assert "validation part" in report["validation"]["source"]
