"""The int8 verdict: the budget rule, the 95% interval of the held-out drop, and "unverified" when the held-out
images cannot resolve the budget (issue 25 item 3, issue 22 item 7); the stratified, capped search/held-out
split."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from fixtures_cli import cli_in_process
from torch import nn

from edgecls.export.metadata import read_contract_file
from edgecls.export.onnx_export import export_to_onnx
from edgecls.export.quant.grading.image_sets import ImageList, split_disjoint
from edgecls.export.quant.grading.verdict import (
    OVER,
    UNVERIFIED,
    WITHIN,
    judge,
    paired_difference_interval,
    wilson_interval,
    within_budget,
)
from edgecls.runtime.contract.model_contract import ModelContract


def _logits(classes: np.ndarray, n_classes: int = 3) -> np.ndarray:
    """float32[N, C] logits whose top-1 is ``classes``."""
    out = np.zeros((len(classes), n_classes), np.float32)
    out[np.arange(len(classes)), classes] = 1.0
    return out


def test_the_budget_rule_is_inclusive_and_tolerates_float_rounding():
    assert within_budget(1.0, 1.0) and within_budget(100 * (0.93 - 0.92), 1.0)  # 1.0000000000000009
    assert not within_budget(1.01, 1.0) and within_budget(-3.0, 0.0)


def test_wilson_interval_matches_its_closed_form():
    z2 = 1.959963984540054**2
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(z2 / (20 + z2))  # no failure seen in 20: up to 16%
    lo, hi = wilson_interval(10, 20)
    half = math.sqrt(z2 * 0.25 / 20 + z2**2 / 1600) / (1 + z2 / 20)
    assert (lo + hi) / 2 == pytest.approx(0.5) and hi - lo == pytest.approx(2 * half)


def test_paired_interval_contains_the_difference_and_flips_with_the_models():
    rng = np.random.default_rng(0)
    first = rng.random(200) < 0.8
    second = first.copy()
    second[:10] = ~second[:10]  # ten answers changed
    theta = first.mean() - second.mean()
    lo, hi = paired_difference_interval(first, second)
    assert lo < theta < hi
    assert paired_difference_interval(second, first) == pytest.approx((-hi, -lo))
    # No answer changed: the interval is not [0, 0] (a bootstrap's would be) but narrows with more images.
    same = np.ones(20, bool)
    lo20, hi20 = paired_difference_interval(same, same)
    lo400, hi400 = paired_difference_interval(np.ones(400, bool), np.ones(400, bool))
    assert lo20 < 0 < hi20 and hi20 - lo20 > 0.1 and 0 < hi400 - lo400 < 0.02


def test_twenty_images_with_fp32_saturated_are_unverified_not_within_budget():
    """Issue 25: 20 held-out crops, fp32 at 100%, int8 changed nothing: "within budget" was printed; the test
    split then showed a 3.3-point loss."""
    labels = np.arange(20) % 3
    v = judge(_logits(labels), _logits(labels), labels, 1.0)
    assert v.status == UNVERIFIED and v.drop_points == 0.0 and v.budget_met
    text = v.line()
    assert "unverified" in text and "95% interval" in text
    assert "fp32 answers every held-out image correctly" in text and "one image is worth 5.00 points" in text


def test_many_images_with_a_small_drop_are_within_budget_and_a_large_one_is_over():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 20000)
    fp32 = labels.copy()
    fp32[:2000] = (labels[:2000] + 1) % 3  # fp32 at 90%: not saturated
    int8 = fp32.copy()
    int8[2000:2020] = (labels[2000:2020] + 1) % 3  # 20 answers lost of 20000: 0.1 points
    v = judge(_logits(int8), _logits(fp32), labels, 1.0)
    assert v.status == WITHIN and v.drop_points == pytest.approx(0.1) and not v.reasons
    assert v.interval_points[0] < 0.1 < v.interval_points[1] < 1.0
    int8[2000:2400] = (labels[2000:2400] + 1) % 3  # 2 points
    assert judge(_logits(int8), _logits(fp32), labels, 1.0).status == OVER


def test_unlabelled_drop_is_the_share_of_changed_answers_with_its_wilson_interval():
    fp32 = np.zeros(1000, int)
    int8 = fp32.copy()
    int8[:3] = 1
    v = judge(_logits(int8), _logits(fp32), None, 1.0)
    lo, hi = wilson_interval(3, 1000)
    assert v.metric == "agreement" and v.drop_points == pytest.approx(0.3)
    assert v.interval_points == pytest.approx((100 * lo, 100 * hi)) and v.status == WITHIN


def test_split_is_stratified_over_labels():
    """Issue 22 item 7: both parts see every class in the same proportion (a plain shuffle does not)."""
    labels = np.repeat([0, 1, 2], 40)
    images = ImageList("x", [np.zeros((2, 2, 3), np.uint8) for _ in labels], labels, [])
    search, holdout = split_disjoint(images, 0.5, ("search", "held-out"))
    assert np.bincount(search.labels).tolist() == np.bincount(holdout.labels).tolist() == [20, 20, 20]


def test_the_search_part_is_capped_and_the_rest_grades():
    from edgecls.export.quant.grading.holdout import MAX_SEARCH_IMAGES, split_validation

    images = ImageList("x", [np.zeros((2, 2, 3), np.uint8)] * 1000, None, [])
    search, holdout, _ = split_validation(images, lambda _m: None)
    assert len(search) == MAX_SEARCH_IMAGES and len(holdout) == 1000 - MAX_SEARCH_IMAGES
    search, holdout, _ = split_validation(ImageList("x", images.images[:100], None, []), lambda _m: None)
    assert len(search) == len(holdout) == 50


class _Confident(nn.Module):
    """Top-1 = the dominant colour channel, with a wide margin: int8 never changes an answer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1) * 10)
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean((2, 3))


def _colour_folder(folder, n: int, seed: int):
    import cv2

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = np.full((32, 32, 3), 20, np.uint8)
        im[..., i % 3] = 200 + rng.integers(0, 50)
        cv2.imwrite(str(folder / f"{i:03d}.png"), im)
    return folder


def test_quantize_on_too_few_held_out_images_says_unverified_everywhere(tmp_path, capsys):
    """Issue 25 item 3: in words, in the contract and in the report; exit 0, or 4 with --require-verified."""

    src = tmp_path / "m.onnx"
    contract = ModelContract(labels=("b", "g", "r"), input_size=(32, 32), resize_mode="stretch")
    export_to_onnx(_Confident().eval(), contract, src, exporter="torchscript")
    calib, val = _colour_folder(tmp_path / "calib", 24, 0), _colour_folder(tmp_path / "val", 16, 1)
    argv = ["quantize", str(src), "--calib", str(calib), "--val", str(val), "--out", str(tmp_path / "q")]
    code, out, err = cli_in_process(argv, capsys)
    assert code == 0, err
    assert "int8 UNVERIFIED" in out + err and "within budget:" not in out + err
    assert "one image is worth 12.50 points" in out + err and "95% interval" in out + err
    q = read_contract_file(tmp_path / "q" / "m.int8.onnx").provenance["quantization"]
    assert q["status"] == UNVERIFIED and len(q["interval_points"]) == 2
    assert "unverified, one image is worth 12.50 points" in q["verdict"]
    report = json.loads((tmp_path / "q" / "quantization_report.json").read_text())
    assert report["status"] == UNVERIFIED and report["drop_points"] == 0.0
    assert "UNVERIFIED" in (tmp_path / "q" / "quantization_report.md").read_text()
    code, _, err = cli_in_process([*argv, "--require-verified"], capsys)
    assert code == 4 and "error: int8 UNVERIFIED" in err
