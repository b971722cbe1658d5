"""What the int8 step is asked to do: the search's settings and where its images come from.

Both are frozen: ``edgecls quantize`` and ``edgecls export --quantize`` build them once from their flags
(:class:`~edgecls.export.export_run.ExportOptions` holds them; ``quantize_file`` takes them), and a change is a
``dataclasses.replace``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgecls.export.quant.recipes import QuantRecipe
from edgecls.runtime.accuracy_budget import DEFAULT_MAX_DROP


@dataclass(frozen=True)
class QuantizeOptions:
    """How ``quantize_model`` searches, grades and writes the int8 model (the images are given to it)."""

    max_drop: float = DEFAULT_MAX_DROP
    # The interleaved timing of int8 against fp32 (paired_timing, as edgecls bench times): timed calls per block
    # and warm-up calls per session
    latency_runs: int = 10
    latency_warmup: int = 10
    sensitivity_images: int = 16
    recipes: tuple[QuantRecipe, ...] | None = None  # None: chosen for the target
    report_dir: str | None = None  # None: beside the int8 model
    target: str = "auto"  # auto (this CPU) | x86-vnni | x86-avx2 | arm64
    allow_over_budget: bool = False  # write an over-budget model (marked in its contract)
    require_verified: bool = False  # an "unverified" verdict is an error (exit status 4) instead of exit 0
    trial_latency_runs: int = 20  # per trial of the search (the fastest model within budget is chosen)
    cache_dir: str | None = None  # sensitivity rankings are cached here (None: not cached)
    # Unlabelled images: grade agreement on the images fp32 decides ("decisive", decisive.py) or on "all".
    agreement_on: str = "decisive"
    # Layer-wise reconstruction (reconstruct.py): "auto" = when post-training int8 misses the budget, "on", "off";
    # reconstruct_seconds bounds it (layers not reached keep post-training's rounding).
    reconstruct: str = "auto"
    reconstruct_seconds: float = 600.0
    # The speed step (speed_step.py): profile the pick per node and keep float what runs faster so, within budget
    tune_speed: bool = True


@dataclass(frozen=True)
class Int8Images:
    """Where calibration and validation images come from: DATA arguments (a folder or ``builtin:NAME``).

    With no ``val`` and a model without run data, the ``calib`` folder is split (seeded, disjoint) into both
    roles (``image_sets.load_int8_images``).
    """

    calib: str | None = None  # None: the run's train split (export of a trained run)
    val: str | None = None  # None: the run's val split, or a part of ``calib``
    calib_images: int = 500  # at most this many calibration images
    val_images: int = 1000  # at most this many validation images


def user_cache_dir() -> Path:
    """Where the CLI caches sensitivity rankings: $XDG_CACHE_HOME/edgecls/quantize (default ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgecls" / "quantize"
