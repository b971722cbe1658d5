"""The int8 step's flags, declared once: ``edgecls quantize`` and ``edgecls export --quantize`` both take them.

Only typer here (``edgecls --help`` stays torch-free); the values land in
edgecls.export.quant.options.QuantizeOptions.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

MaxDropOpt = Annotated[
    float,
    typer.Option("--max-drop", min=0.0, help="Accuracy budget: max top-1 drop in points (agreement if unlabelled)."),
]


class AgreementOn(str, Enum):
    """Where unlabelled validation images grade agreement (edgecls.export.quant.grading.decisive.AGREEMENT_ON)."""

    decisive = "decisive"
    all = "all"


AgreementOnOpt = Annotated[
    AgreementOn,
    typer.Option(
        "--agreement-on",
        help="Unlabelled validation images: grade agreement with fp32 on the images fp32 decides (its answer "
        "survives +-1 grey level of noise and a JPEG q95 re-encode; the agreement on every image is reported "
        "beside it) or on all.",
    ),
]


class Reconstruct(str, Enum):
    """When the int8 file's layers are reconstructed (edgecls.export.quant.repairs.reconstruct)."""

    auto = "auto"
    on = "on"
    off = "off"


ReconstructOpt = Annotated[
    Reconstruct,
    typer.Option(
        "--reconstruct",
        help="Choose each quantized layer's weight rounding and bias from the float model's outputs on the "
        "calibration images (layer by layer; no labels, no torch model needed): auto = when post-training int8 "
        "misses the budget, on = always, off = never. Kept only when it measures better. Bounded by counts "
        "(images, layers), so a busy machine makes the same file, later; --time-budget is only a cap.",
    ),
]
TargetOpt = Annotated[
    str,
    typer.Option(
        "--target",
        help="Device the int8 file is made for: auto (this CPU), x86-vnni, x86-avx2 or arm64. Recorded in "
        "the contract; run/bench/info warn on a CPU that would saturate its products.",
    ),
]
AllowOverBudgetOpt = Annotated[
    bool,
    typer.Option(
        "--allow-over-budget",
        help="Write the int8 model even when it misses the budget (marked in its contract; exit status 0).",
    ),
]
RequireVerifiedOpt = Annotated[
    bool,
    typer.Option(
        "--require-verified",
        help="Exit 4 when the verdict is 'unverified' (the held-out images cannot resolve the budget); "
        "without it such a run exits 0 and says 'unverified'.",
    ),
]
TimeBudgetOpt = Annotated[
    float,
    typer.Option(
        "--time-budget",
        min=1.0,
        help="Seconds --reconstruct may take: only a safety cap (its work is counted, not timed); when it bites "
        "the report names the layers it left.",
    ),
]
DEFAULT_TIME_BUDGET = 600.0  # = QuantizeOptions.reconstruct_seconds (kept import-free here)
