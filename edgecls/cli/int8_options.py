"""The int8 flags, declared once: ``edgecls quantize``, ``export --quantize`` and ``pack --quantize`` all take them
through :func:`int8_flags` and receive one :class:`~edgecls.export.quant.options.Int8Settings`.

Each flag is keyed by the QuantizeOptions or Int8Images field it sets, and its default is that field's default,
read from the dataclass (export/quant/options.py), never retyped here. That module is torch-free, so ``edgecls
--help`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from enum import Enum
from typing import Annotated, Any, TypeVar, get_args

import typer

from edgecls.cli.choices import AgreementOn, Int8Target, Reconstruct
from edgecls.cli.options import JsonOpt, OutDirOpt, flag_group, in_panel
from edgecls.export.quant.options import Int8Images, QuantizeOptions, int8_settings

BUDGET_PANEL = "Accuracy budget"
IMAGES_PANEL = "Images"
RECIPE_PANEL = "int8 recipe"
OUTPUT_PANEL = "Output"

# --out and --json of the commands that make int8 files, under "Output" in their --help.
OutDirOutputOpt = in_panel(OutDirOpt, OUTPUT_PANEL)
JsonOutputOpt = in_panel(JsonOpt, OUTPUT_PANEL)


#: Every int8 flag, by the field it sets (QuantizeOptions or Int8Images), in the order --help lists them.
INT8_FLAGS: dict[str, Any] = {
    "max_drop": Annotated[
        float,
        typer.Option(
            "--max-drop", min=0.0, rich_help_panel=BUDGET_PANEL,
            help="Accuracy budget: the most top-1 may drop, in points (agreement with fp32 when the validation "
            "images are unlabelled).",
        ),
    ],
    "agreement_on": Annotated[
        AgreementOn,
        typer.Option(
            "--agreement-on", rich_help_panel=BUDGET_PANEL,
            help="Unlabelled validation images: grade agreement with fp32 on the images fp32 decides (its answer "
            "survives +-1 grey level of noise and a JPEG q95 re-encode; the agreement on every image is reported "
            "beside it) or on all.",
        ),
    ],
    "allow_over_budget": Annotated[
        bool,
        typer.Option(
            "--allow-over-budget", rich_help_panel=BUDGET_PANEL,
            help="Write the int8 model even when it misses the budget (marked in its contract; exit status 0).",
        ),
    ],
    "require_verified": Annotated[
        bool,
        typer.Option(
            "--require-verified", rich_help_panel=BUDGET_PANEL,
            help="Exit 4 when the verdict is 'unverified' (the held-out images cannot resolve the budget); without "
            "it such a run exits 0 and says 'unverified'.",
        ),
    ],
    "calib": Annotated[
        str | None,
        typer.Option(
            "--calib", rich_help_panel=IMAGES_PANEL,
            help="Calibration images: a folder or builtin:NAME. An ONNX file needs them; a training run uses its "
            "train split when they are not given.",
        ),
    ],
    "val": Annotated[
        str | None,
        typer.Option(
            "--val", rich_help_panel=IMAGES_PANEL,
            help="Validation images: class folders named after the model's labels, unlabelled images, or "
            "builtin:NAME. Default: a training run's val split, else a part of --calib set aside (no image is "
            "graded that was calibrated on).",
        ),
    ],
    "calib_images": Annotated[
        int,
        typer.Option("--calib-images", min=1, rich_help_panel=IMAGES_PANEL,
                     help="Use at most this many calibration images."),
    ],
    "val_images": Annotated[
        int,
        typer.Option("--val-images", min=1, rich_help_panel=IMAGES_PANEL,
                     help="Use at most this many validation images."),
    ],
    "target": Annotated[
        Int8Target,
        typer.Option(
            "--target", rich_help_panel=RECIPE_PANEL,
            help="The CPU the int8 file is made for: auto (this CPU; for pack, the --platform's), x86-vnni, "
            "x86-avx2 or arm64. Recorded in the contract; run, bench and info warn on a CPU that would saturate "
            "its products.",
        ),
    ],
    "reconstruct": Annotated[
        Reconstruct,
        typer.Option(
            "--reconstruct", rich_help_panel=RECIPE_PANEL,
            help="Choose each quantized layer's weight rounding and bias from the float model's outputs on the "
            "calibration images (layer by layer; no labels, no torch model needed): auto = when post-training "
            "int8 misses the budget, on = always, off = never. Kept only when it measures better. Bounded by "
            "counts (images, layers), so a busy machine makes the same file, later.",
        ),
    ],
    "reconstruct_seconds": Annotated[
        float,
        typer.Option(
            "--max-learning-seconds", min=1.0, rich_help_panel=RECIPE_PANEL,
            help="A safety cap on each int8 learning step (--reconstruct), in seconds. Its work is counted, not "
            "timed, so the cap bites only on a very slow machine; the layers it left keep post-training's rounding "
            "and the report names them.",
        ),
    ],
}


def library_default(name: str) -> Any:
    """The default of the QuantizeOptions or Int8Images field ``name``: the one definition every command uses."""
    for cls in (QuantizeOptions, Int8Images):
        for f in fields(cls):
            if f.name == name and f.default is not MISSING:
                return f.default
    raise KeyError(f"{name} is not a QuantizeOptions or Int8Images field with a default")


def _flag_default(name: str, annotation: Any) -> Any:
    """The library's default as the flag's type: a choice's default is its Enum member (typer shows the value)."""
    base = get_args(annotation)[0]
    value = library_default(name)
    return base(value) if isinstance(base, type) and issubclass(base, Enum) else value


INT8_DEFAULTS: dict[str, Any] = {name: _flag_default(name, annotation) for name, annotation in INT8_FLAGS.items()}

_Command = TypeVar("_Command", bound=Callable[..., Any])


def int8_flags(command: _Command) -> _Command:
    """Give a typer command every int8 flag (:data:`INT8_FLAGS`, defaults from the library's options); it receives
    them as ``int8: Int8Settings``, made by the one builder (edgecls.export.quant.options.int8_settings)."""
    return flag_group(command, "int8", INT8_FLAGS, int8_settings, INT8_DEFAULTS)
