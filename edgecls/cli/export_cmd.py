"""``edgecls export``, ``edgecls quantize`` and ``edgecls info``: thin adapters over edgecls.export.

Only typer and the standard library are imported here; torch/onnx load inside the command bodies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

EXPORT_HELP = """Export a trained run or checkpoint to ONNX with its contract, checked against PyTorch.

Writes model.onnx and model.golden.npz (and model.fp16.onnx with --fp16, model.int8.onnx plus
quantization_report.json/.md with --quantize) and export_report.json into --out (default RUN/export).
The export fails, writing nothing, if ONNX and PyTorch differ by more than 1e-4 or on any top-1 class on
real images from the run's data.

Bring your own torch model with --model FILE.py:FACTORY (or module:FACTORY), --labels and --img-size.

Examples:
  edgecls export runs/digits --quantize
  edgecls export --model net.py:build --weights net.pt --labels labels.txt --img-size 224 --out export/
"""

QUANTIZE_HELP = """Make a static QDQ int8 model of any ONNX classifier, within an accuracy budget.

Calibrates on --calib images through the runtime's preprocessing, measures top-1 (labelled --val folders
named after the model's labels, or builtin sets) or agreement with fp32 (unlabelled images), and ships the
fastest model whose drop is <= --max-drop points. Without --val, the --calib images are split (seeded,
disjoint) into calibration and validation parts: no image is graded that was calibrated on. The validation
images are split again: half choose the model, half grade it. Writes MODEL-stem.int8.onnx and
quantization_report.json/.md (+ the accuracy/speed frontier plot) into --out (default: beside MODEL).

Exit status: 0 within budget, 3 over budget (nothing written at the int8 name unless --allow-over-budget),
2 could not run.

Example:  edgecls quantize export/model.onnx --calib data/train --val data/val --max-drop 1
"""

INFO_HELP = """Show a model's contract (labels, input size, preprocessing, provenance), inputs/outputs, size,
parameter count and operator counts. Works with only onnxruntime installed (graph details need onnx).

Example:  edgecls info runs/digits/export/model.int8.onnx
"""


def _floats3(text: str | None, what: str) -> tuple[float, float, float] | None:
    from edgecls.runtime.errors import EdgeclsError

    if text is None:
        return None
    try:
        values = tuple(float(x) for x in text.replace(" ", "").split(","))
    except ValueError as e:
        raise EdgeclsError(f"{what} must be three comma-separated numbers, got {text!r}") from e
    if len(values) != 3:
        raise EdgeclsError(f"{what} must be three comma-separated numbers, got {text!r}")
    return values  # type: ignore[return-value]


def _flags(
    img_size: int | None,
    mean: str | None,
    std: str | None,
    resize: str,
    crop: float,
    interpolation: str,
    color_order: str,
    jpeg_decode: str,
) -> Any:
    from edgecls.export.byo_model import PreprocessFlags
    from edgecls.runtime.errors import EdgeclsError

    if img_size is None:
        raise EdgeclsError("--img-size is required with --labels/--model (the input size the model expects)")
    kw: dict[str, Any] = {
        "img_size": img_size,
        "resize": resize,
        "crop": crop,
        "interpolation": interpolation,
        "color_order": color_order.upper(),
        "jpeg_decode": jpeg_decode,
    }
    for name, value in (("mean", _floats3(mean, "--mean")), ("std", _floats3(std, "--std"))):
        if value is not None:
            kw[name] = value
    return PreprocessFlags(**kw)


def _logger(quiet: bool) -> Any:
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    return (lambda _m: None) if quiet else (lambda m: console.print(m, markup=False))


# Options shared by `export --model` and `quantize` for models without a contract.
LabelsOpt = Annotated[Path | None, typer.Option(help="Label file, one per line (or a JSON list).")]
ImgSizeOpt = Annotated[int | None, typer.Option(min=8, help="Input size (square) the model expects.")]
MeanOpt = Annotated[str | None, typer.Option(help="Per-channel mean, e.g. 0.485,0.456,0.406 (ImageNet default).")]
StdOpt = Annotated[str | None, typer.Option(help="Per-channel std, e.g. 0.229,0.224,0.225 (ImageNet default).")]
ResizeOpt = Annotated[str, typer.Option(help="stretch or shorter_side_crop.")]
CropOpt = Annotated[float, typer.Option(help="Crop fraction for shorter_side_crop.")]
InterpOpt = Annotated[str, typer.Option(help="nearest, linear, cubic or area.")]
ColorOpt = Annotated[str, typer.Option(help="Channel order the model expects: RGB or BGR.")]
JpegDecodeOpt = Annotated[
    str, typer.Option(help="reduced (large JPEGs at 1/2-1/8 scale) or full (as the model was measured).")
]
MaxDropOpt = Annotated[float, typer.Option(min=0.0, help="Accuracy budget: max top-1 drop in points.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as one JSON line on stdout.")]
TargetOpt = Annotated[
    str,
    typer.Option(
        help="Device the int8 file is made for: auto (this CPU), x86-vnni, x86-avx2 or arm64. Recorded in "
        "the contract; run/bench/info warn on a CPU that would saturate its products."
    ),
]
AllowOverBudgetOpt = Annotated[
    bool,
    typer.Option(
        "--allow-over-budget",
        help="Write the int8 model even when it misses the budget (marked in its contract; exit status 0).",
    ),
]


def export_command(
    run: Annotated[Path | None, typer.Argument(help="Run directory or checkpoint (.pt).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory (default RUN/export).")] = None,
    quantize: Annotated[bool, typer.Option("--quantize", help="Also write model.int8.onnx.")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write model.fp16.onnx (fp32 inputs/outputs).")] = False,
    calib: Annotated[str | None, typer.Option(help="Calibration images (default: the run's train split).")] = None,
    val: Annotated[str | None, typer.Option(help="Validation images (default: the run's val split).")] = None,
    data: Annotated[str | None, typer.Option(help="Images for the parity check (default: run's val split).")] = None,
    max_drop: MaxDropOpt = 1.0,
    target: TargetOpt = "auto",
    allow_over_budget: AllowOverBudgetOpt = False,
    qat: Annotated[
        int,
        typer.Option(
            "--qat",
            min=0,
            metavar="EPOCHS",
            help="With --quantize, on an edgecls run: when post-training int8 misses the budget, fine-tune EPOCHS "
            "epochs with int8 rounding in the loop and quantize that (qat_report.md compares both).",
        ),
    ] = 0,
    opset: Annotated[int, typer.Option(min=13, help="ONNX opset.")] = 17,
    exporter: Annotated[
        str, typer.Option(help="auto (dynamo, falling back to torchscript), dynamo, torchscript.")
    ] = "auto",
    model: Annotated[str | None, typer.Option(help="Your own model: FILE.py:FACTORY or module:FACTORY.")] = None,
    weights: Annotated[Path | None, typer.Option(help="State dict for --model.")] = None,
    labels: LabelsOpt = None,
    img_size: ImgSizeOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    resize: ResizeOpt = "shorter_side_crop",
    crop: CropOpt = 0.875,
    interpolation: InterpOpt = "linear",
    color_order: ColorOpt = "RGB",
    jpeg_decode: JpegDecodeOpt = "reduced",
    json_out: JsonOpt = False,
) -> None:
    from edgecls.export.export_run import ExportOptions, export_checkpoint
    from edgecls.runtime.errors import EdgeclsError

    if exporter not in ("auto", "dynamo", "torchscript"):
        raise EdgeclsError(f"--exporter must be auto, dynamo or torchscript, got {exporter!r}")
    options = ExportOptions(
        out_dir=str(out) if out else None,
        opset=opset,
        exporter=exporter,  # type: ignore[arg-type]
        fp16=fp16,
        quantize=quantize,
        data=data,
        calib=calib,
        val=val,
        max_drop=max_drop,
        target=target,
        allow_over_budget=allow_over_budget,
        qat_epochs=qat,
    )
    log = _logger(json_out)
    if model is not None:
        from edgecls.export.byo_model import export_user_model

        if run is not None:
            raise EdgeclsError("give either a run/checkpoint or --model, not both")
        if labels is None:
            raise EdgeclsError("--model needs --labels FILE (one label per model output)")
        flags = _flags(img_size, mean, std, resize, crop, interpolation, color_order, jpeg_decode)
        report = export_user_model(model, weights, labels, flags, options, log)
    elif run is None:
        raise EdgeclsError("nothing to export: give a run directory or checkpoint, or --model FILE.py:FACTORY")
    else:
        report = export_checkpoint(run, options, log)
    if json_out:
        typer.echo(json.dumps(report.to_dict()))
    else:
        log(f"export written to {report.out_dir}: " + ", ".join(Path(p).name for p in report.files.values()))


def quantize_command(
    model: Annotated[Path, typer.Argument(help="fp32 ONNX classifier.")],
    calib: Annotated[str, typer.Option(help="Calibration images: a folder or builtin:NAME.")],
    val: Annotated[
        str | None,
        typer.Option(help="Validation images (labelled class folders or builtin:NAME; default: --calib)."),
    ] = None,
    max_drop: MaxDropOpt = 1.0,
    target: TargetOpt = "auto",
    allow_over_budget: AllowOverBudgetOpt = False,
    out: Annotated[Path | None, typer.Option(help="Output directory (default: beside MODEL).")] = None,
    calib_images: Annotated[int, typer.Option(min=1, help="Use at most this many calibration images.")] = 500,
    val_images: Annotated[int, typer.Option(min=1, help="Use at most this many validation images.")] = 1000,
    labels: LabelsOpt = None,
    img_size: ImgSizeOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    resize: ResizeOpt = "shorter_side_crop",
    crop: CropOpt = 0.875,
    interpolation: InterpOpt = "linear",
    color_order: ColorOpt = "RGB",
    jpeg_decode: JpegDecodeOpt = "reduced",
    json_out: JsonOpt = False,
) -> None:
    from edgecls.export.byo_model import read_labels
    from edgecls.export.quant_data import VALIDATION_SHARE, load_role_images, split_disjoint
    from edgecls.export.quantize import QuantizeOptions, quantize_model, user_cache_dir
    from edgecls.runtime.errors import ModelLoadError

    if not model.is_file():
        raise ModelLoadError(f"{model}: no such model file")
    log = _logger(json_out)
    contract = None
    if labels is not None:
        contract = _flags(img_size, mean, std, resize, crop, interpolation, color_order, jpeg_decode).contract(
            read_labels(labels), {"source": "foreign-onnx", "arch": model.name}
        )
    else:
        from edgecls.export.metadata import read_contract_file
        from edgecls.runtime.errors import ContractError

        contract = read_contract_file(model)
        if contract is None:
            raise ContractError(
                f"{model}: no edgecls contract inside; pass --labels, --img-size and the "
                "preprocessing flags (--mean/--std/--resize/--crop/--interpolation/--color-order)"
            )
    if val is None and not calib.startswith("builtin:"):
        # One folder for both roles: a seeded disjoint split, so no image is graded that was calibrated on.
        both = load_role_images(calib, contract, "calibration", calib_images + val_images)
        calibration, validation = split_disjoint(both, VALIDATION_SHARE, ("calibration", "validation"))
        log(
            f"no --val: {calib} split (seeded, disjoint) into {len(calibration)} calibration and "
            f"{len(validation)} validation images; pass --val for a separate held-out set"
        )
    else:
        calibration = load_role_images(calib, contract, "calibration", calib_images, builtin_split="train")
        validation = load_role_images(val or calib, contract, "validation", val_images, builtin_split="val")
    out_dir = out or model.parent
    stem = model.name[: -len(".onnx")] if model.name.endswith(".onnx") else model.stem
    report = quantize_model(
        model,
        out_dir / f"{stem}.int8.onnx",
        calibration,
        validation,
        contract,
        QuantizeOptions(
            max_drop=max_drop,
            report_dir=str(out_dir),
            target=target,
            allow_over_budget=allow_over_budget,
            cache_dir=str(user_cache_dir()),
        ),
        log,
    )
    if json_out:
        typer.echo(json.dumps(report.to_dict()))


def info_command(
    model: Annotated[Path, typer.Argument(help="ONNX model.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    from edgecls.export.info import model_info
    from edgecls.runtime.provider_catalog import provider_paths

    info = model_info(model)
    runs_here = provider_paths()  # which engine each --provider uses on this machine (OpenVINO: EP or runtime)
    if json_out:
        typer.echo(json.dumps({**info.to_dict(), "providers_here": runs_here}))
        return
    _print_info(info)
    typer.echo("providers here: " + "; ".join(runs_here))


def _print_info(info: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = Table(title=f"{info.path}", show_header=False, title_justify="left")
    head.add_row("size", f"{info.size_bytes / 1e6:.2f} MB")
    head.add_row("producer", info.producer or "-")
    if info.source == "onnx":
        head.add_row("opset / IR", f"{info.opset} / {info.ir_version}")
        head.add_row("parameters", f"{info.parameters:,}")
        head.add_row("quantized", "yes (QDQ/QLinear ops)" if info.quantized else "no")
    for t in info.inputs:
        head.add_row(f"input {t.name}", f"{t.dtype} {t.shape}")
    for t in info.outputs:
        head.add_row(f"output {t.name}", f"{t.dtype} {t.shape}")
    console.print(head)
    c = info.contract
    if c is None:
        console.print(info.contract_error or "no edgecls contract: give the preprocessing as flags when running it")
    else:
        ct = Table(title="contract", show_header=False, title_justify="left")
        labels = ", ".join(c["labels"][:12]) + (f" ... ({len(c['labels'])} labels)" if len(c["labels"]) > 12 else "")
        ct.add_row("labels", labels)
        ct.add_row("input", f"{c['layout']} {c['input_size'][0]}x{c['input_size'][1]} {c['color_order']}")
        ct.add_row("resize", f"{c['resize_mode']} (crop {c['crop_fraction']}), {c['interpolation']}")
        ct.add_row("JPEG decode", str(c.get("jpeg_decode", "reduced")))
        ct.add_row("values", f"x*{c['scale']:.6g}, mean {c['mean']}, std {c['std']}")
        for key, value in c.get("provenance", {}).items():
            ct.add_row(f"provenance.{key}", json.dumps(value) if isinstance(value, dict | list) else str(value))
        console.print(ct)
    for warning in info.int8_warnings:
        console.print(f"warning: {warning}", style="bold red", markup=False)
    if info.op_counts:
        console.print("operators: " + ", ".join(f"{k} {v}" for k, v in info.op_counts.items()))
    elif info.source == "onnxruntime":
        console.print("operator and parameter counts need the onnx package (pip install 'edgecls[train]')")


def register(app: typer.Typer) -> None:
    app.command("export", help=EXPORT_HELP)(export_command)
    app.command("quantize", help=QUANTIZE_HELP)(quantize_command)
    app.command("info", help=INFO_HELP)(info_command)
