"""The validation images in two parts: the search part chooses, the held-out part grades.

The split is seeded and disjoint, stratified over the labels when there are labels; the search part is capped
(``MAX_SEARCH_IMAGES``): the search overfits the images it chooses on (96-100% there became 88-90% held out on
EfficientNet-Lite0), so images beyond the cap go to the grade, where they narrow the interval. Each part is
prepared once (inputs, fp32's logits, the images fp32 decides) for every trial and for the verdict. A run's test
split is graded the same way, reported and never used to choose.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.export.parity import onnx_logits
from edgecls.export.quant.grading.decisive import DecisiveImages, decisive_parts
from edgecls.export.quant.grading.evaluate import Accuracy, measure_accuracy
from edgecls.export.quant.grading.image_sets import ImageList, split_disjoint
from edgecls.export.quant.grading.verdict import Verdict, judge
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.inference.scores import top1_accuracy

Log = Callable[[str], None]
HOLDOUT_FRACTION = 0.5  # share of the validation images the search never sees (at least)
MAX_SEARCH_IMAGES = 200


@dataclass(frozen=True)
class GradedImages:
    """One part of the validation images, ready to grade any int8 file against fp32."""

    images: ImageList
    inputs: np.ndarray  # float32[N, 3, h, w]
    fp32_logits: np.ndarray  # float32[N, C]
    decisive: DecisiveImages | None  # unlabelled images fp32 decides (None: labelled, or every image graded)

    @property
    def labels(self) -> np.ndarray | None:
        return self.images.labels

    @property
    def mask(self) -> np.ndarray | None:
        return None if self.decisive is None else self.decisive.mask

    def __len__(self) -> int:
        return len(self.images)


def split_validation(validation: ImageList, log: Log) -> tuple[ImageList, ImageList, list[str]]:
    """(search part, held-out part, warnings): disjoint when there are at least 4 images."""
    if len(validation) < 4:
        why = f"only {len(validation)} validation images: the search and the final grade use the same images"
        return validation, validation, [why]
    share = max(HOLDOUT_FRACTION, 1.0 - MAX_SEARCH_IMAGES / len(validation))
    search, holdout = split_disjoint(validation, share, ("search", "held-out"))
    log(f"int8: {len(search)} validation images choose the model, {len(holdout)} held-out images grade it")
    return search, holdout, []


def graded_parts(
    fp32_path: Path, parts: tuple[ImageList, ImageList], contract: ModelContract, agreement_on: str, log: Log
) -> tuple[GradedImages, GradedImages]:
    """The search and held-out parts with their inputs, fp32's logits and (unlabelled) the images fp32 decides."""
    inputs = [p.inputs(contract) for p in parts]  # computed once for every trial
    logits = [onnx_logits(fp32_path, x) for x in inputs]
    decisive: tuple[DecisiveImages | None, DecisiveImages | None] = (None, None)
    if parts[0].labels is None:
        images = (parts[0].images, parts[1].images)
        decisive = decisive_parts(fp32_path, images, (logits[0], logits[1]), contract, agreement_on, log)
    search, holdout = (GradedImages(p, x, r, d) for p, x, r, d in zip(parts, inputs, logits, decisive, strict=True))
    return search, holdout


@dataclass(frozen=True)
class Grade:
    """An int8 file against fp32 on images nothing chose it with."""

    fp32: Accuracy
    int8: Accuracy
    verdict: Verdict


def grade(int8_path: Path, part: GradedImages, max_drop: float, precise: bool) -> Grade:
    """``int8_path`` on ``part``: its accuracy, fp32's, and the verdict against ``max_drop``."""
    acc, logits = measure_accuracy(int8_path, part.inputs, part.labels, part.fp32_logits, precise, part.mask)
    fp32_top1 = None if part.labels is None else top1_accuracy(part.fp32_logits, part.labels)
    fp32 = Accuracy(fp32_top1, 1.0, 0.0, None if part.mask is None else 1.0)
    return Grade(fp32, acc, judge(logits, part.fp32_logits, part.labels, max_drop, part.mask))


def drop_on(path: Path, part: GradedImages, precise: bool) -> float:
    """Points ``path`` loses against fp32 on ``part`` (labels: top-1; else agreement, on decisive images)."""
    acc, _ = measure_accuracy(path, part.inputs, part.labels, part.fp32_logits, precise, part.mask)
    return 100.0 * ((1.0 if part.labels is None else top1_accuracy(part.fp32_logits, part.labels)) - acc.score)


def grade_test(
    int8_path: Path, fp32_path: str | os.PathLike[str], test: ImageList, contract: ModelContract, max_drop: float,
    precise: bool,
) -> dict[str, Any]:
    """The chosen int8 model against fp32 on a run's test split (reported, never used to choose)."""
    inputs = test.inputs(contract)
    g = grade(int8_path, GradedImages(test, inputs, onnx_logits(fp32_path, inputs), None), max_drop, precise)
    return {
        "source": test.source,
        "images": len(test),
        "metric": g.verdict.metric,
        "fp32_top1": g.fp32.top1,
        "int8_top1": g.int8.top1,
        "agreement": g.int8.agreement,
        "drop_points": round(g.verdict.drop_points, 3),
        "interval_points": [round(x, 3) for x in g.verdict.interval_points],
    }
