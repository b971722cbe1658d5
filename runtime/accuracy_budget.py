"""The accuracy budget: how many points a cheaper variant may lose, and the one rule that applies it.

``edgecls quantize`` / ``export --quantize`` (an int8 file against fp32) and ``edgecls bench --provider all`` (a
provider against onnxruntime CPU) share this default and this comparison, not their images: quantize grades the
drop on held-out images (unlabelled: agreement on the decisive ones, export/quant/grading/decisive.py, with a 95%
interval that can make the verdict "unverified", export/quant/grading/verdict.py), bench on every ``--data`` image
against what onnxruntime CPU reaches on the same file (runtime/bench/auto_pick.py). So a file within budget in one
need not be in the other. Import-free on purpose: the CLI reads the default without importing numpy or onnxruntime.
"""

from __future__ import annotations

#: Percentage points of top-1 (or of agreement with fp32 when unlabelled) a variant may lose by default.
DEFAULT_MAX_DROP = 1.0
#: Float tolerance of the comparison: drops are differences of image-count ratios (100 * (0.93 - 0.92) > 1.0).
BUDGET_EPS = 1e-9


def within_budget(drop_points: float, max_drop: float) -> bool:
    """The budget rule, the only one: a drop (percentage points, positive = worse) meets ``max_drop``."""
    return drop_points <= max_drop + BUDGET_EPS
