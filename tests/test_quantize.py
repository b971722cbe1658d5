"""int8: calibration through the runtime's preprocessing, and the accuracy budget.

One file for the quantize command's contract (honest grading, exit statuses, bias correction, the frontier),
sharing one module-scoped set of real exported models so they are built once. The recipes per target and the
runtime's saturation warnings, which need no model, are tests/test_quant_recipes.py."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from fixtures_export import FAST_QUANT
from torch import nn

from edgecls.export.metadata import read_contract_file
from edgecls.export.onnx_export import export_to_onnx
from edgecls.export.parity import onnx_logits
from edgecls.export.quant.image_sets import ImageList, load_role_images
from edgecls.export.quant.options import QuantizeOptions
from edgecls.export.quant.pipeline import quantize_model
from edgecls.runtime.contract import ModelContract
from edgecls.runtime.errors import ContractError, DataError


class _Outlier(nn.Module):
    """conv1 has one constant channel of 5000 that conv2 ignores: the shared per-tensor int8 range of conv1's
    output crushes the channels conv2 does use. Only keeping conv1 and conv2 in float together fixes it;
    two identity 1x1 convs in front (pre1, pre2) and the head quantize well, so the fixed model still runs
    mostly in int8."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)
        self.pre1 = nn.Conv2d(3, 3, 1)
        self.pre2 = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv1.weight[0] = 0
            self.conv1.bias[0] = 5000
            self.conv2.weight[:, 0] = 0
            self.head.weight *= 20
            for pre in (self.pre1, self.pre2):
                pre.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
                pre.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(self.pre2(self.pre1(x))))))
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
    val = ImageList("colours", _colour_images(96, 1), None, [])
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
    # equalisation and the per-tensor calibration method were measured, each kept or not by what it measured
    assert [n.split(" ")[0] for n in report.refinements[:2]] == ["cross-layer", "per-tensor"]
    assert any("equalized" in t["recipe"] for t in report.trials)
    assert any("PerTensor" in t["recipe"] for t in report.trials)
    # no trial twice; graded on held-out images the search did not see, both scores reported
    keys = [(t["recipe"], t["bias_correction"]) for t in report.trials]
    assert len(keys) == len(set(keys))
    assert report.validation["search_images"] + report.validation["holdout_images"] == 96
    assert report.search["images"] == 48 and "drop_points" in report.search
    # the chosen graph runs mostly in int8 after onnxruntime's fusions, and the frontier is reported
    assert report.fusion["int8_convs"] >= report.fusion["float_convs"]
    assert report.frontier and (tmp_path / "q" / "quantization_frontier.png").is_file()
    assert contract.provenance["quantization"]["target"] == report.target["target"]


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


def _image_folder(folder, n: int, seed: int):
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(_colour_images(n, seed)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), im)
    return folder


def test_over_budget_is_exit_3_with_a_plain_verdict_and_nothing_written(tied_model, tmp_path, capsys):
    from test_export import _cli

    src = tmp_path / "m.onnx"
    shutil.copy(tied_model, src)
    calib, val = _image_folder(tmp_path / "calib", 24, 0), _image_folder(tmp_path / "val", 48, 1)
    argv = ["quantize", str(src), "--calib", str(calib), "--val", str(val), "--max-drop", "1"]
    code, _, err = _cli(argv, capsys)
    assert code == 3, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: int8 OVER BUDGET: agreement with fp32 fell ") and ", budget 1," in line
    assert "one held-out image is worth 4.17 points, more than the budget" in err
    assert not (tmp_path / "m.int8.onnx").exists()  # nothing at the normal name
    saved = json.loads((tmp_path / "quantization_report.json").read_text())
    assert saved["written"] is False and saved["budget_met"] is False and saved["drop_points"] > 1

    code, _, err = _cli([*argv, "--allow-over-budget"], capsys)
    assert code == 0, err
    q = read_contract_file(tmp_path / "m.int8.onnx").provenance["quantization"]
    assert q["budget_met"] is False and "fell" in q["verdict"]
    code, out, _ = _cli(["info", str(tmp_path / "m.int8.onnx")], capsys)
    assert code == 0 and "OVER BUDGET" in out
    code, _, err = _cli(["run", str(tmp_path / "m.int8.onnx"), str(val / "000.png")], capsys)
    assert code == 0 and "warning:" in err and "OVER BUDGET" in err


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
    from edgecls.export.quant.image_sets import images_from_run
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
    flags = ["--labels", str(labels), "--input-size", "32", "--resize-mode", "stretch", "--jpeg-decode", "full"]
    argv = ["quantize", str(tmp_path / "foreign.onnx"), "--calib", str(folder), *flags, "--allow-over-budget"]
    code, _, err = _cli(argv, capsys)
    assert code == 0, err
    c = read_contract_file(tmp_path / "foreign.int8.onnx")
    assert c.labels == ("a", "b", "c", "d") and c.provenance["variant"] == "int8"
    assert c.input_size == (32, 32) and c.resize_mode == "stretch"
    assert c.jpeg_decode == "full"  # measured elsewhere on fully decoded images: the contract keeps it
    q = c.provenance["quantization"]  # written whatever the verdict; the verdict is the default budget's
    assert q["max_drop"] == 1.0 and q["budget_met"] is (-q["accuracy_change_points"] <= 1.0)
    code, _, err = _cli([*argv[:-1], "--img-size", "32"], capsys)
    assert code == 2 and "No such option" in err  # the one contract vocabulary: old spellings are gone


def test_quantize_file_is_the_command_as_a_library_call(outlier_model, tmp_path):
    from edgecls.export.quant.options import Int8Images
    from edgecls.export.quant.quantize_file import QuantizeFileOptions, quantize_file
    from edgecls.runtime.contract_options import ContractOptions
    from edgecls.runtime.errors import ModelLoadError

    calib, val = _image_folder(tmp_path / "calib", 16, 0), _image_folder(tmp_path / "val", 16, 1)
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
    assert report.calibration["images"] == 16 and report.validation["images"] == 16  # --val given: no split
    c = read_contract_file(tmp_path / "q" / "model.int8.onnx")
    assert c.jpeg_decode == "full" and c.labels == CONTRACT.labels and c.resize_mode == CONTRACT.resize_mode
    assert (tmp_path / "q" / "quantization_report.json").is_file()


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


def test_disjoint_split_is_seeded_and_shares_no_image():
    from edgecls.export.quant.image_sets import split_disjoint

    images = ImageList("folder", _colour_images(20, 5), None, [])
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
    from test_export import _cli

    (tmp_path / "net.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "def build():\n    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()\n"
    )
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    photos = _image_folder(tmp_path / "photos", 40, 7)
    export = ["export", "--model", f"{tmp_path / 'net.py'}:build", "--labels", str(tmp_path / "labels.txt")]
    export += ["--input-size", "32", "--resize-mode", "stretch", "--exporter", "torchscript", "--quantize"]
    code, _, err = _cli([*export, "--calib", "builtin:shapes", "--out", str(tmp_path / "o1")], capsys)
    assert code == 2 and "--val DATA" in err  # a built-in set is not the user's domain: refused
    code, _, err = _cli([*export, "--calib", str(photos), "--out", str(tmp_path / "o2")], capsys)
    report = json.loads((tmp_path / "o2" / "quantization_report.json").read_text())
    _assert_budget_decided_the_outcome(code, err, report, tmp_path / "o2" / "model.int8.onnx")
    assert "split (seeded, disjoint) into 20 calibration and 20 validation images" in err
    assert "calibration part" in report["calibration"]["source"] and report["calibration"]["images"] == 20
    assert "validation part" in report["validation"]["source"] and "shapes" not in json.dumps(report)
    export = json.loads((tmp_path / "o2" / "export_report.json").read_text())
    assert "validation part" in export["parity_images"]


def test_quantize_without_val_never_grades_on_its_calibration_images(outlier_model, tmp_path, capsys):
    from test_export import _cli

    src = tmp_path / "m.onnx"
    shutil.copy(outlier_model, src)
    folder = _image_folder(tmp_path / "imgs", 30, 9)
    code, _, err = _cli(["quantize", str(src), "--calib", str(folder)], capsys)
    report = json.loads((tmp_path / "quantization_report.json").read_text())
    _assert_budget_decided_the_outcome(code, err, report, tmp_path / "m.int8.onnx")
    assert report["calibration"]["images"] == 15 and report["validation"]["images"] == 15
    assert "calibration part" in report["calibration"]["source"]
    assert "validation part" in report["validation"]["source"]


class _Depthwise(nn.Module):
    """A depthwise 3x3 conv whose weights round the same way in every channel (eight at 0.0104 next to one at
    1.0: 8-bit per-channel steps of 1/127 round each down by 0.0025), on bright inputs: the rounding shifts every
    channel's mean output, which bias correction must undo."""

    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(3, 3, 3, padding=1, groups=3)
        self.head = nn.Linear(3, 2)
        with torch.no_grad():
            self.dw.weight.fill_(0.0104)
            self.dw.weight[:, :, 1, 1] = 1.0
            self.dw.bias.fill_(0.1)  # a bias to correct (convs without one are left as they are)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dw(x).mean((2, 3)))


def _conv_output(path, x: np.ndarray) -> np.ndarray:
    """float32[N, C, H, W]: the first Conv's output of the ONNX model at ``path`` on inputs ``x``."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(path))
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    m.graph.output.append(onnx.helper.make_tensor_value_info(conv.output[0], onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run([conv.output[0]], {sess.get_inputs()[0].name: x})[0]


def test_bias_correction_cancels_the_mean_error_of_rounded_weights(tmp_path):
    from edgecls.export.quant.recipes import QuantRecipe
    from edgecls.export.quant.static_quantizer import StaticQuantizer

    contract = ModelContract(
        labels=("a", "b"), input_size=(32, 32), resize_mode="stretch", mean=(0, 0, 0), std=(1, 1, 1)
    )
    export_to_onnx(_Depthwise().eval(), contract, tmp_path / "dw.onnx", exporter="torchscript")
    calib = ImageList("colours", _colour_images(16, 0), None, [])
    quantizer = StaticQuantizer(tmp_path / "dw.onnx", calib, contract, tmp_path)
    x = calib.inputs(contract)
    ref = _conv_output(tmp_path / "dw.onnx", x)
    errors = {}
    for bc in (False, True):
        path = quantizer.quantize(QuantRecipe("u8s8", bias_correction=bc), tmp_path / f"bc{bc}.onnx")
        errors[bc] = float(np.abs((_conv_output(path, x) - ref).mean(axis=(0, 2, 3))).mean())
    assert quantizer.bias_notes and errors[True] < 0.25 * errors[False]


def test_frontier_keeps_only_undominated_trials():
    from edgecls.export.quant.frontier import frontier

    trials = [
        {"recipe": "a", "drop_points": 0.0, "latency_p50_ms": 5.0},
        {"recipe": "b", "drop_points": 2.0, "latency_p50_ms": 3.0},
        {"recipe": "c", "drop_points": 2.5, "latency_p50_ms": 4.0},  # slower and worse than b
        {"recipe": "d", "drop_points": 9.0, "latency_p50_ms": 2.0},
    ]
    assert [t["recipe"] for t in frontier(trials)] == ["d", "b", "a"]
