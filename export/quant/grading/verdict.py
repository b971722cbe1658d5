"""The int8 verdict on held-out images: the budget rule, the uncertainty of the measured drop, and whether the
images can tell at all.

Three outcomes (``Verdict.status``):
- ``over budget``: the measured drop exceeds ``--max-drop``;
- ``unverified``: the measured drop is within budget but the held-out images cannot resolve the budget - one
  image is worth more points than the budget, fp32 answers every labelled held-out image correctly (the set is
  too easy to show a loss), or the 95% interval of the drop is wider than the budget;
- ``within budget``: the measured drop is within budget and the images can resolve it.

The interval of the drop (percentage points, positive = int8 worse):
- agreement with fp32 (unlabelled images): the Wilson score interval of the share of images whose top-1 class
  changed (Wilson 1927; the drop *is* that share), counted on the images fp32 decides when they are given
  (``decisive.py``: its answer survives invisible changes of the pixels), with the change on every image beside it;
- top-1 change (labelled): Newcombe's interval for a difference of paired proportions (Newcombe 1998,
  "Improved confidence intervals for the difference between binomial proportions based on paired data",
  Statistics in Medicine 17:2635-2650, method 10), built from the two Wilson intervals and the correlation of
  the per-image outcomes; it stays honest when no answer changed (a plain bootstrap would say [0, 0]).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgecls.runtime.accuracy_budget import BUDGET_EPS, within_budget

#: Two-sided 95% normal quantile.
Z95 = 1.959963984540054

WITHIN, UNVERIFIED, OVER = "within budget", "unverified", "over budget"


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (fractions in [0, 1])."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference_interval(
    first_correct: np.ndarray, second_correct: np.ndarray, z: float = Z95
) -> tuple[float, float]:
    """Newcombe's method-10 interval of p1 - p2 for bool[N] per-image outcomes of two models on the same images
    (fractions; p1 = first's accuracy, p2 = second's)."""
    first, second = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
    n = len(first)
    a = int(np.sum(first & second))
    b = int(np.sum(first & ~second))  # only the first right
    c = int(np.sum(~first & second))  # only the second right
    d = n - a - b - c
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)
    l2, u2 = wilson_interval(a + c, n, z)
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(denom) if denom > 0 else 0.0
    theta = p1 - p2
    lower = theta - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = theta + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, lower), min(1.0, upper)


@dataclass
class Verdict:
    """The held-out grade of one int8 model against its fp32 reference."""

    status: str  # WITHIN | UNVERIFIED | OVER
    metric: str  # "top1" | "agreement"
    drop_points: float
    interval_points: tuple[float, float]  # 95% interval of the drop
    max_drop: float
    images: int  # the images graded (the decisive ones, when agreement is graded on them)
    reasons: list[str] = field(default_factory=list)  # why the images cannot resolve the budget
    all_images: int | None = None  # agreement graded on decisive images: every held-out image, and
    all_drop_points: float | None = None  # the drop on every one of them (reported, not judged)

    @property
    def budget_met(self) -> bool:
        """The measured drop is within budget (verified or not)."""
        return self.status != OVER

    def line(self) -> str:
        """One plain line: what moved, by how much (with its interval), against which budget, on how many images,
        and, when unverified, why the images cannot tell."""
        what = "top-1" if self.metric == "top1" else "agreement with fp32"
        drop = self.drop_points
        moved = f"fell {drop:.1f} points" if drop >= 0 else f"rose {-drop:.1f} points"
        lo, hi = self.interval_points
        text = (
            f"{what} {moved} (95% interval {lo:+.1f} to {hi:+.1f}), budget {self.max_drop:g}, "
            f"on {self.images} held-out images"
        )
        if self.all_images is not None and self.all_drop_points is not None:
            text += (
                f" that fp32 decides (of {self.all_images}; on all {self.all_images}: "
                f"{self.all_drop_points:+.1f} points)"
            )
        if self.reasons:
            text += ": unverified, " + "; ".join(self.reasons)
        return text

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["interval_points"] = [round(x, 3) for x in self.interval_points]
        return d


def judge(
    int8_logits: np.ndarray,
    fp32_logits: np.ndarray,
    labels: np.ndarray | None,
    max_drop: float,
    decisive: np.ndarray | None = None,
) -> Verdict:
    """Grade float32[N, C] int8 logits against the fp32 model's on the same images (int64[N] labels or None).
    ``decisive`` (bool[N], unlabelled only): grade agreement on the images fp32 decides, report all beside it."""
    int8_top, fp32_top = np.argmax(int8_logits, axis=1), np.argmax(fp32_logits, axis=1)
    n = len(fp32_top)
    reasons = []
    all_images = all_drop = None
    if labels is None:
        metric = "agreement"
        moved = int8_top != fp32_top
        if decisive is not None:
            all_images, all_drop = n, 100.0 * int(moved.sum()) / max(n, 1)
            moved, n = moved[decisive], int(decisive.sum())
            if n == 0:
                reasons.append("fp32 decides none of the held-out images (its answers move under invisible noise)")
        changed = int(np.sum(moved))
        drop = 100.0 * changed / max(n, 1)
        lo, hi = wilson_interval(changed, n)
        interval = (100.0 * lo, 100.0 * hi)
    else:
        metric = "top1"
        fp32_right, int8_right = fp32_top == labels, int8_top == labels
        drop = 100.0 * (int(np.sum(fp32_right)) - int(np.sum(int8_right))) / max(n, 1)
        lo, hi = paired_difference_interval(fp32_right, int8_right)
        interval = (100.0 * lo, 100.0 * hi)
        if n and bool(np.all(fp32_right)):
            reasons.append("fp32 answers every held-out image correctly: the set is too easy to show a loss")
    if n and 100.0 / n > max_drop:
        reasons.append(f"one image is worth {100.0 / n:.2f} points, more than the budget")
    if interval[1] - interval[0] > max_drop + BUDGET_EPS:
        reasons.append(f"the 95% interval is {interval[1] - interval[0]:.1f} points wide, wider than the budget")
    if not within_budget(drop, max_drop):
        status, reasons = OVER, []
    else:
        status = UNVERIFIED if reasons else WITHIN
    return Verdict(status, metric, drop, interval, max_drop, n, reasons, all_images, all_drop)
