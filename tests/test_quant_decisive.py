"""Agreement with fp32 graded on the images fp32 decides (export/quant/grading/decisive.py): an image whose fp32
answer flips when pixels move by one grey level is not held against int8; the agreement on every image is
reported."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fixtures_export import FAST_QUANT
from fixtures_quant import colour_images
from torch import nn

from edgecls.export.onnx_export import export_to_onnx
from edgecls.export.parity import onnx_logits
from edgecls.export.quant.grading.decisive import NOISE_DRAWS, invisible_changes, onnx_decisive_images
from edgecls.export.quant.grading.image_sets import ImageList, split_disjoint
from edgecls.export.quant.grading.verdict import OVER, WITHIN, judge
from edgecls.export.quant.options import QuantizeOptions
from edgecls.export.quant.pipeline import quantize_model
from edgecls.runtime.contract.model_contract import ModelContract

#: The same mean and std for every channel: equal red and green pixels stay equal after preprocessing.
CONTRACT = ModelContract(
    labels=("red", "green"), input_size=(32, 32), resize_mode="stretch", mean=(0.5,) * 3, std=(0.5,) * 3
)


class _RedOrGreen(nn.Module):
    """Logit 0 follows the red level, logit 1 the green level, through two convs: an image whose red and green
    channels are equal pixel for pixel is an exact tie, decided by any change of one grey level."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 2)
        with torch.no_grad():
            for conv in (self.conv1, self.conv2):
                conv.weight.zero_()
                conv.bias.fill_(3.0)  # inputs in [-1, 1]: +3 keeps them positive through ReLU
            self.conv1.weight[0, 0, 1, 1] = self.conv1.weight[1, 1, 1, 1] = 1.0  # RGB input: R, G
            self.conv2.weight[0, 0, 1, 1] = self.conv2.weight[1, 1, 1, 1] = 1.0
            self.head.weight.zero_()
            self.head.weight[0, 0] = self.head.weight[1, 1] = 1.0
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv2(torch.relu(self.conv1(x)))).mean((2, 3)))


def _with_ties(n: int, seed: int) -> list[np.ndarray]:
    """n seeded colour images (uint8[32, 32, 3] BGR); every other one has green = red pixel for pixel: a tie."""
    images = colour_images(n, seed)
    for im in images[1::2]:
        im[:, :, 1] = im[:, :, 2]
    return images


@pytest.fixture(scope="module")
def red_or_green(tmp_path_factory):
    path = tmp_path_factory.mktemp("red-or-green") / "model.onnx"
    export_to_onnx(_RedOrGreen().eval(), CONTRACT, path, exporter="torchscript")
    return path


def test_invisible_changes_move_each_pixel_by_at_most_one_level_and_reencode_once():
    image = colour_images(1, 3)[0]
    image[0, 0] = (0, 255, 128)  # clipped at both ends
    changed = invisible_changes(image, np.random.default_rng(0))
    assert len(changed) == NOISE_DRAWS + 1
    for noisy in changed[:NOISE_DRAWS]:
        step = noisy.astype(int) - image
        assert noisy.dtype == np.uint8 and np.abs(step).max() == 1 and (step != 0).mean() > 0.3
    assert changed[-1].shape == image.shape and not np.array_equal(changed[-1], image)  # the JPEG q95 re-encode


def test_exact_ties_are_not_decisive_and_clear_answers_are(red_or_green):
    images = _with_ties(16, 0)
    x = ImageList("ties", images, None, []).inputs(CONTRACT)
    logits = onnx_logits(red_or_green, x)
    margins = np.abs(logits[:, 0] - logits[:, 1])
    assert margins[1::2].max() == 0.0 and margins[0::2].min() > 0.01  # ties exact; the rest 2+ levels apart
    found = onnx_decisive_images(red_or_green, images, logits, CONTRACT)
    assert found.mask[0::2].all()
    assert found.mask[1::2].sum() <= 2  # a tie survives only if no change lowers its green below red
    assert found.count == int(found.mask.sum()) and f"of {len(images)} images" in found.describe()


def test_judge_holds_only_decisive_images_against_int8_and_reports_every_image():
    fp32 = np.zeros(1000, int)
    int8 = fp32.copy()
    int8[:60] = 1  # 60 answers changed, all on images fp32 does not decide
    decisive = np.ones(1000, bool)
    decisive[:150] = False
    logits = np.eye(2)
    v = judge(logits[int8], logits[fp32], None, 1.0, decisive)
    assert v.status == WITHIN and v.drop_points == 0.0 and v.images == 850 and v.interval_points[1] < 1.0
    assert v.all_images == 1000 and v.all_drop_points == pytest.approx(6.0)
    assert "on 850 held-out images that fp32 decides (of 1000; on all 1000: +6.0 points)" in v.line()
    int8[990:] = 1  # 10 of the decisive ones change too
    v = judge(logits[int8], logits[fp32], None, 1.0, decisive)
    assert v.status == OVER and v.drop_points == pytest.approx(100 * 10 / 850)
    assert judge(logits[int8], logits[fp32], None, 1.0).drop_points == pytest.approx(7.0)  # as before: on all
    nothing = judge(logits[int8], logits[fp32], None, 1.0, np.zeros(1000, bool))
    assert nothing.images == 0 and any("decides none" in r for r in nothing.reasons)


def test_quantize_grades_on_the_images_fp32_decides_and_all_grades_every_one(red_or_green, tmp_path):
    calib = ImageList("colours", colour_images(48, 0), None, [])
    val = ImageList("ties", _with_ties(96, 1), None, [])
    messages: list[str] = []
    out = tmp_path / "decisive" / "m.int8.onnx"
    options = QuantizeOptions(allow_over_budget=True, **FAST_QUANT)
    report = quantize_model(red_or_green, out, calib, val, None, options, messages.append)
    holdout, decisive = report.validation.holdout, report.validation.decisive_holdout
    assert report.validation.agreement_on == "decisive" and decisive is not None and 0 < decisive < holdout
    assert any("graded on the images fp32 decides" in m for m in messages)
    assert f"on {decisive} held-out images that fp32 decides (of {holdout};" in report.grade.verdict.line()
    assert report.grade.int8.decisive_agreement is not None
    assert "on the images fp32 decides" in (out.parent / "quantization_report.md").read_text()
    # Recomputed from the files: the held-out half (the pipeline's seeded split), fp32's decisive images there,
    # and the written int8 file's answers on them give the verdict's drop.
    _, held_out = split_disjoint(val, 0.5, ("search", "held-out"))
    x = held_out.inputs(CONTRACT)
    fp32 = onnx_logits(red_or_green, x)
    mask = onnx_decisive_images(red_or_green, held_out.images, fp32, CONTRACT).mask
    moved = onnx_logits(out, x).argmax(1) != fp32.argmax(1)
    assert mask.sum() == decisive and report.drop_points == pytest.approx(100 * moved[mask].mean(), abs=1e-3)
    assert report.grade.int8.agreement == pytest.approx(1 - moved.mean())
    assert json.loads((out.parent / "quantization_report.json").read_text())["validation"]["agreement_on"] == "decisive"

    options = QuantizeOptions(allow_over_budget=True, agreement_on="all", **FAST_QUANT)
    every = quantize_model(red_or_green, tmp_path / "all" / "m.int8.onnx", calib, val, None, options, messages.append)
    assert every.validation.agreement_on == "all" and every.validation.decisive_holdout is None
    assert every.grade.int8.decisive_agreement is None and "that fp32 decides" not in every.grade.verdict.line()
    assert every.drop_points == pytest.approx(100 * (1 - every.grade.int8.agreement), abs=1e-6)
