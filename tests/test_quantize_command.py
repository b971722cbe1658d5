"""`edgecls quantize` and its library call (quantize_file): exit statuses, the over-budget verdict, contracts of
edgecls and foreign models."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from fixtures_cli import cli_in_process
from fixtures_export import FAST_QUANT
from fixtures_quant import CONTRACT, colour_images, image_folder
from torch import nn

from edgecls.export.metadata import read_contract_file
from edgecls.export.onnx_export import export_to_onnx
from edgecls.export.parity import onnx_logits
from edgecls.export.quant.grading.image_sets import ImageList
from edgecls.export.quant.options import QuantizeOptions
from edgecls.export.quant.pipeline import quantize_model
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import ContractError, DataError


class _Tied(nn.Module):
    """Two logits that differ by 1e-3 of their size: any int8 step on the output ties them, and keeping the
    head float means keeping most of this small graph float, which is never shipped. Over every budget."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 2)
        with torch.no_grad():  # features 0/1 carry the red/green levels; the logits differ by 1e-3 * (g - r)
            for conv in (self.conv1, self.conv2):
                conv.weight.zero_()
                conv.bias.fill_(3.0)  # inputs are ImageNet-normalised: +3 keeps them positive through ReLU
            self.conv1.weight[0, 2, 1, 1] = self.conv1.weight[1, 1, 1, 1] = 1.0  # BGR input: R, G
            self.conv2.weight[0, 0, 1, 1] = self.conv2.weight[1, 1, 1, 1] = 1.0
            self.head.weight.fill_(1.0)
            self.head.weight[1, 0] += -1e-3
            self.head.weight[1, 1] += 1e-3
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(x.mean((2, 3)))


@pytest.fixture(scope="module")
def tied_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tied") / "model.onnx"
    contract = ModelContract(labels=("a", "b"), input_size=(32, 32), resize_mode="stretch")
    export_to_onnx(_Tied().eval(), contract, path, exporter="torchscript")
    return path


@pytest.mark.slow  # int8 searches: 38 s at load 5-13
def test_over_budget_is_exit_3_with_a_plain_verdict_and_nothing_written(tied_model, tmp_path, capsys):

    src = tmp_path / "m.onnx"
    shutil.copy(tied_model, src)
    calib, val = image_folder(tmp_path / "calib", 24, 0), image_folder(tmp_path / "val", 48, 1)
    argv = ["quantize", str(src), "--calib", str(calib), "--val", str(val), "--max-drop", "1"]
    code, _, err = cli_in_process(argv, capsys)
    assert code == 3, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: int8 OVER BUDGET: agreement with fp32 fell ") and ", budget 1," in line
    assert "one held-out image is worth 4.17 points, more than the budget" in err
    assert not (tmp_path / "m.int8.onnx").exists()  # nothing at the normal name
    saved = json.loads((tmp_path / "quantization_report.json").read_text())
    assert saved["written"] is False and saved["budget_met"] is False and saved["drop_points"] > 1

    code, _, err = cli_in_process([*argv, "--allow-over-budget"], capsys)
    assert code == 0, err
    q = read_contract_file(tmp_path / "m.int8.onnx").provenance["quantization"]
    assert q["budget_met"] is False and "fell" in q["verdict"]
    code, out, _ = cli_in_process(["info", str(tmp_path / "m.int8.onnx")], capsys)
    assert code == 0 and "OVER BUDGET" in out
    code, _, err = cli_in_process(["run", str(tmp_path / "m.int8.onnx"), str(val / "000.png")], capsys)
    assert code == 0 and "warning:" in err and "OVER BUDGET" in err


def test_quantize_cli_on_a_model_with_contract(exported_tiny, tmp_path, shapes_folder, capsys):

    src = tmp_path / "m.onnx"
    shutil.copy(exported_tiny / "model.onnx", src)
    code, out, err = cli_in_process(
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


@pytest.mark.slow  # int8 search: 14 s at load 5-13
def test_quantize_foreign_model_needs_flags(outlier_model, tmp_path, capsys):
    import onnx

    bare = onnx.load(str(outlier_model))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "foreign.onnx"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    import cv2

    for i, im in enumerate(colour_images(12, 3)):
        cv2.imwrite(str(folder / f"{i}.png"), im)
    code, _, err = cli_in_process(["quantize", str(tmp_path / "foreign.onnx"), "--calib", str(folder)], capsys)
    assert code == 2 and "no edgecls contract" in err
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\nd\n")
    flags = ["--labels", str(labels), "--input-size", "32", "--resize-mode", "stretch", "--jpeg-decode", "full"]
    argv = ["quantize", str(tmp_path / "foreign.onnx"), "--calib", str(folder), *flags, "--allow-over-budget"]
    code, _, err = cli_in_process(argv, capsys)
    assert code == 0, err
    c = read_contract_file(tmp_path / "foreign.int8.onnx")
    assert c.labels == ("a", "b", "c", "d") and c.provenance["variant"] == "int8"
    assert c.input_size == (32, 32) and c.resize_mode == "stretch"
    assert c.jpeg_decode == "full"  # measured elsewhere on fully decoded images: the contract keeps it
    q = c.provenance["quantization"]  # written whatever the verdict; the verdict is the default budget's
    assert q["max_drop"] == 1.0 and q["budget_met"] is (-q["accuracy_change_points"] <= 1.0)
    code, _, err = cli_in_process([*argv[:-1], "--img-size", "32"], capsys)
    assert code == 2 and "No such option" in err  # the one contract vocabulary: old spellings are gone


@pytest.mark.slow  # int8 search: 13 s at load 5-13
def test_quantize_file_is_the_command_as_a_library_call(outlier_model, tmp_path):
    from edgecls.export.quant.options import Int8Images
    from edgecls.export.quant.quantize_file import QuantizeFileOptions, quantize_file
    from edgecls.runtime.contract.options import ContractOptions
    from edgecls.runtime.errors import ModelLoadError

    calib, val = image_folder(tmp_path / "calib", 16, 0), image_folder(tmp_path / "val", 16, 1)
    options = QuantizeFileOptions(
        images=Int8Images(calib=str(calib), val=str(val)),
        out_dir=str(tmp_path / "q"),
        contract=ContractOptions(jpeg_decode="full"),  # overrides one field of the file's contract
        quantize=QuantizeOptions(allow_over_budget=True, **FAST_QUANT),
    )
    with pytest.raises(ModelLoadError, match="no such model file"):
        quantize_file(tmp_path / "missing.onnx", options, log=lambda _m: None)
    with pytest.raises(DataError, match="--calib"):
        quantize_file(outlier_model, dataclasses.replace(options, images=Int8Images()), log=lambda _m: None)
    assert not (tmp_path / "q").exists()  # refused before anything was written
    report = quantize_file(outlier_model, options, log=lambda _m: None)
    assert report.written and report.int8_model == str(tmp_path / "q" / "model.int8.onnx")
    assert report.calibration.images == 16 and report.validation.images.images == 16  # --val given: no split
    c = read_contract_file(tmp_path / "q" / "model.int8.onnx")
    assert c.jpeg_decode == "full" and c.labels == CONTRACT.labels and c.resize_mode == CONTRACT.resize_mode
    assert (tmp_path / "q" / "quantization_report.json").is_file()


def test_quantize_without_contract_or_flags_is_a_contract_error(outlier_model, tmp_path):
    import onnx

    bare = onnx.load(str(outlier_model))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ContractError):
        quantize_model(
            tmp_path / "bare.onnx",
            tmp_path / "o.onnx",
            ImageList("x", colour_images(2, 0), None, []),
            ImageList("x", colour_images(2, 0), None, []),
        )
    assert not (tmp_path / "o.onnx").exists()
