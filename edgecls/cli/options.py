"""The command line's shared options: one declaration per flag, used by every command that takes it.

Contract flags are spelled like the ModelContract fields they set (``--input-size`` sets ``input_size``) and
are declared once, in :data:`CONTRACT_FLAGS`; a command takes them all by decorating itself with
:func:`contract_flags` and receives one :class:`~edgecls.runtime.contract.options.ContractOptions`.
Nothing heavy is imported here: ``edgecls --help`` must stay torch-free.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

import typer

from edgecls.cli.choices import ColorOrder, Interpolation, JpegDecode, OutputKind, ResizeMode
from edgecls.runtime.contract.options import ContractOptions
from edgecls.runtime.providers.precision import Precision

_CONTRACT_PANEL = "Model contract (for models without one, or to override it)"

#: Every contract flag, by the ModelContract field it sets. Defaults are all None: "keep the model's value".
CONTRACT_FLAGS: dict[str, Any] = {
    "labels": Annotated[
        str | None,
        typer.Option(
            help="Class labels: a file (one per line, or a JSON list) or a,b,c.", rich_help_panel=_CONTRACT_PANEL
        ),
    ],
    "input_size": Annotated[
        str | None, typer.Option(help="Input size the network consumes: S or HxW.", rich_help_panel=_CONTRACT_PANEL)
    ],
    "mean": Annotated[
        str | None,
        typer.Option(
            help="Per-channel mean r,g,b in [0,1] units (default ImageNet's).", rich_help_panel=_CONTRACT_PANEL
        ),
    ],
    "std": Annotated[
        str | None,
        typer.Option(
            help="Per-channel std r,g,b in [0,1] units (default ImageNet's).", rich_help_panel=_CONTRACT_PANEL
        ),
    ],
    "scale": Annotated[
        float | None, typer.Option(help="Pixel scale before mean/std (default 1/255).", rich_help_panel=_CONTRACT_PANEL)
    ],
    "resize_mode": Annotated[
        ResizeMode | None,
        typer.Option(
            help="How the image becomes the input size: stretch it, or resize its shorter side and crop the centre.",
            rich_help_panel=_CONTRACT_PANEL,
        ),
    ],
    "crop_fraction": Annotated[
        float | None,
        typer.Option(
            help="shorter_side_crop: the centre crop's share of the resized side (default 0.875).",
            rich_help_panel=_CONTRACT_PANEL,
        ),
    ],
    "interpolation": Annotated[
        Interpolation | None, typer.Option(help="Resize interpolation.", rich_help_panel=_CONTRACT_PANEL)
    ],
    "color_order": Annotated[
        ColorOrder | None,
        typer.Option(help="Channel order the model expects (either case).", case_sensitive=False,
                     rich_help_panel=_CONTRACT_PANEL),
    ],
    "output_kind": Annotated[
        OutputKind | None, typer.Option(help="What the model outputs.", rich_help_panel=_CONTRACT_PANEL)
    ],
    "jpeg_decode": Annotated[
        JpegDecode | None,
        typer.Option(
            help="reduced decodes large JPEGs at 1/2-1/8 scale (never below what the resize needs); full decodes "
            "every pixel, for models measured that way.",
            rich_help_panel=_CONTRACT_PANEL,
        ),
    ],
}

_Command = TypeVar("_Command", bound=Callable[..., Any])


def _contract_options(given: dict[str, Any]) -> ContractOptions:
    """The contract flags' values -> ContractOptions; a choice flag's enum member becomes its string: the contract
    (and the JSON it is stored as) holds plain values."""
    return ContractOptions(**{name: v.value if isinstance(v, Enum) else v for name, v in given.items()})


def contract_flags(command: _Command) -> _Command:
    """Give a typer command every contract flag; it receives them as ``contract_options: ContractOptions``.

    The wrapper's signature is the command's own (without ``contract_options``) plus one keyword-only
    parameter per entry of :data:`CONTRACT_FLAGS`, which is what typer reads to build the options.
    """
    return flag_group(command, "contract_options", CONTRACT_FLAGS, _contract_options)


def contract_flags_for(*names: str) -> Callable[[_Command], _Command]:
    """:func:`contract_flags` with only the flags ``names`` (ModelContract field names), for a command where
    the others have no meaning (``train``: the data's folders are the labels, and it makes logits)."""
    unknown = set(names) - set(CONTRACT_FLAGS)
    if unknown:
        raise ValueError(f"not contract flags: {sorted(unknown)}")
    flags = {name: annotation for name, annotation in CONTRACT_FLAGS.items() if name in names}
    return lambda command: flag_group(command, "contract_options", flags, _contract_options)


def flag_group(
    command: _Command,
    into: str,
    flags: Mapping[str, Any],
    build: Callable[[dict[str, Any]], Any],
    defaults: Mapping[str, Any] | None = None,
) -> _Command:
    """Give a typer command the flags ``flags`` (``{parameter name: Annotated[type, typer.Option(...)]}``, defaults
    from ``defaults``, else None); it receives ``build({name: value})`` as its parameter ``into`` instead.

    The wrapper's signature is the command's own (without ``into``) plus one keyword-only parameter per flag,
    which is what typer reads; groups compose (a command may take the contract flags and the int8 flags)."""
    signature = inspect.signature(command, eval_str=True)  # resolve `from __future__ import annotations` strings
    own = [p for name, p in signature.parameters.items() if name != into]
    added = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=(defaults or {}).get(name), annotation=annotation
        )
        for name, annotation in flags.items()
    ]

    @functools.wraps(command)
    def with_flags(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name, (defaults or {}).get(name)) for name in flags}
        return command(*args, **{into: build(given)}, **kwargs)

    # typer reads parameters from __signature__ and annotations from get_type_hints(): both must list the flags.
    with_flags.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
    with_flags.__annotations__ = {
        k: v for k, v in getattr(command, "__annotations__", {}).items() if k != into
    } | dict(flags)
    return with_flags  # type: ignore[return-value]


def in_panel(option: Any, panel: str) -> Any:
    """A shared option (``Annotated[T, typer.Option(...)]``) shown under ``panel`` in one command's ``--help``
    (typer takes one Option per parameter, so the panel is set on a copy)."""
    base, info = get_args(option)
    moved = copy.copy(info)
    moved.rich_help_panel = panel
    return Annotated[base, moved]


# --- options several commands share (same flag, same meaning, same help) ------------------------------------
#: What ``--provider auto`` means in every command: the first provider onnxruntime has here of tensorrt, cuda,
#: migraphx, rocm, openvino, directml, coreml, qnn, else cpu (runtime.providers.names.AUTO_PREFERENCE).
PROVIDER_HELP = "Execution provider: auto (an accelerator onnxruntime has here, else cpu), cpu, openvino, cuda, "
ProviderOpt = Annotated[
    str, typer.Option("--provider", "-p", help=PROVIDER_HELP + "tensorrt, ... (edgecls providers).")
]
PrecisionOpt = Annotated[
    Precision | None,
    typer.Option(
        "--precision",
        help="What OpenVINO computes in: f32 (default, as onnxruntime), bf16 or f16 where the CPU has it "
        "(faster, may move top-1). onnxruntime runs the file's own types.",
        show_default=False,
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", help="On an engine error, print its full message too.")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=1, help="Intra-op threads (default: the engine's).")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Fail instead of warning when a provider falls back to CPU.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout (JSON / JSON Lines).")]
TopKOpt = Annotated[int, typer.Option("--top-k", "-k", min=1, help="Classes reported per input.")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Images per inference batch.")]
DecodeThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--decode-threads", min=1, help="Image decode threads, working while the model runs (default: 2 to 4, "
        "as many as the cores allow).",
    ),
]
MaxFileMbOpt = Annotated[
    int,
    typer.Option(
        "--max-file-mb", min=1,
        help="Image files larger than this many MB become error rows (so do pipes and devices: never read).",
    ),
]
MaxPixelsOpt = Annotated[
    int,
    typer.Option(
        "--max-pixels", min=1,
        help="Largest width x height an image's header may declare; larger ones are refused before decoding.",
    ),
]
CAMERA_HELP = "N for V4L2 /dev/videoN (/dev/videoN also works), or pi:N for the Raspberry Pi camera N (Picamera2)."
CameraOpt = Annotated[str | None, typer.Option("--camera", help="A camera: " + CAMERA_HELP, show_default=False)]
OutDirOpt = Annotated[Path | None, typer.Option("--out", help="Output directory.")]
# Checkpoints load as plain tensors and data (torch weights_only); this is the only way past that (docs/SECURITY.md).
TrustCheckpointOpt = Annotated[
    bool,
    typer.Option(
        "--trust-checkpoint",
        help="Load a legacy or foreign checkpoint that needs more than tensors and plain data: runs code from the "
        "file, so only for files whose source you trust.",
    ),
]


def progress_log(json_out: bool) -> Callable[[str], None]:
    """Where a command's progress messages go: stderr, or nowhere with ``--json`` (stdout holds the JSON)."""
    from rich.console import Console

    from edgecls.runtime.terminal.text import plain

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    # Messages quote paths, class names and contract fields: shown as text, control characters made visible.
    return (lambda _m: None) if json_out else (lambda m: console.print(plain(m), markup=False))
