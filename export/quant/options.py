"""What the int8 step is asked to do: the search's settings, where its images come from, and the one builder that
makes both from the int8 flags.

Both are frozen, and each default is defined here once: ``edgecls quantize``, ``export --quantize`` and
``pack --quantize`` read their flags' defaults from these fields (edgecls.cli.int8_options) and build the options
with :func:`int8_settings`. :class:`~edgecls.export.export_run.ExportOptions` and ``PackOptions`` hold them;
``quantize_file`` takes them; a change is a ``dataclasses.replace``. Nothing heavy is imported here: ``edgecls
--help`` reads these defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
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
    target: str = "auto"  # auto (this CPU) | x86-vnni | x86-avx2 | arm64 (edgecls.runtime.cpu_isa.TARGETS)
    allow_over_budget: bool = False  # write an over-budget model (marked in its contract)
    require_verified: bool = False  # an "unverified" verdict is an error (exit status 4) instead of exit 0
    trial_latency_runs: int = 20  # per trial of the search (the fastest model within budget is chosen)
    cache_dir: str | None = None  # sensitivity rankings are cached here (None: not cached; the CLI: user_cache_dir)
    # Unlabelled images: grade agreement on the images fp32 decides ("decisive", decisive.py) or on "all".
    agreement_on: str = "decisive"
    # Layer-wise reconstruction (reconstruct.py): "auto" = when post-training int8 misses the budget, "on", "off".
    reconstruct: str = "auto"
    # A safety cap on each learning step (--max-learning-seconds): reconstruction's work is bounded by counts, so a
    # busy machine makes the same file, later; layers not reached by the cap keep post-training's rounding.
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


@dataclass(frozen=True)
class Int8Settings:
    """What the int8 flags ask for: how to search and grade (``quantize``) and on which images (``images``)."""

    quantize: QuantizeOptions = field(default_factory=QuantizeOptions)
    images: Int8Images = field(default_factory=Int8Images)


def int8_settings(values: Mapping[str, object]) -> Int8Settings:
    """The one builder of the int8 options from the int8 flags (``edgecls quantize``, ``export --quantize``,
    ``pack --quantize``). ``values``: flag values by the name of the QuantizeOptions or Int8Images field they set
    (a choice given as an Enum is passed by its value). Sensitivity rankings are cached in the user's cache
    (:func:`user_cache_dir`), so a second command on the same model skips that measurement."""
    by_class = {cls: {f.name for f in fields(cls)} for cls in (QuantizeOptions, Int8Images)}
    unknown = set(values) - set().union(*by_class.values())
    if unknown:
        raise TypeError(f"not an int8 option: {', '.join(sorted(unknown))}")
    plain = {name: v.value if isinstance(v, Enum) else v for name, v in values.items()}

    def of(cls: type) -> dict[str, object]:
        return {name: v for name, v in plain.items() if name in by_class[cls]}

    quantize = QuantizeOptions(**{**of(QuantizeOptions), "cache_dir": str(user_cache_dir())})
    return Int8Settings(quantize, Int8Images(**of(Int8Images)))  # type: ignore[arg-type]


def user_cache_dir() -> Path:
    """Where the CLI caches sensitivity rankings: $XDG_CACHE_HOME/edgecls/quantize (default ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgecls" / "quantize"
