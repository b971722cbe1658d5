"""``edgecls export``: parses the flags into ExportSource + ExportOptions for edgecls.export.export_source.

Only typer and the standard library are imported here; torch/onnx load inside the command body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.choices import Exporter
from edgecls.cli.int8_options import (
    IMAGES_PANEL,
    OUTPUT_PANEL,
    RECIPE_PANEL,
    JsonOutputOpt,
    OutDirOutputOpt,
    int8_flags,
)
from edgecls.cli.options import TrustCheckpointOpt, contract_flags, in_panel, progress_log
from edgecls.export.quant.options import Int8Settings
from edgecls.runtime.contract.options import ContractOptions

_MODEL_PANEL = "Model"

# Help paragraphs are one line each: the terminal wraps them at its width without breaking a sentence early.
EXPORT_HELP = (
    "Export a trained run or checkpoint to ONNX with its contract, checked against PyTorch.\n\n"
    "Writes model.onnx and model.golden.npz (and model.fp16.onnx with --fp16, model.int8.onnx plus "
    "quantization_report.json/.md with --quantize) and export_report.json into --out (default RUN/export). "
    "The export fails, writing nothing, if ONNX and PyTorch differ by more than 1e-4 or on any top-1 class on "
    "real images from the run's data.\n\n"
    "Bring your own torch model with --model FILE.py:FACTORY (or module:FACTORY), --labels and --input-size "
    "(and the other contract flags for the preprocessing it expects).\n\n"
    "Examples:\n"
    "  edgecls export runs/digits --quantize\n"
    "  edgecls export --model net.py:build --weights net.pt --labels labels.txt \\\n"
    "    --input-size 224 --out export/"
)


@contract_flags
@int8_flags
def export_command(
    run: Annotated[Path | None, typer.Argument(help="Run directory or checkpoint (.pt).")] = None,
    out: OutDirOutputOpt = None,
    quantize: Annotated[
        bool, typer.Option("--quantize", help="Also write model.int8.onnx.", rich_help_panel=OUTPUT_PANEL)
    ] = False,
    fp16: Annotated[
        bool,
        typer.Option(
            "--fp16", help="Also write model.fp16.onnx (fp32 inputs/outputs).", rich_help_panel=OUTPUT_PANEL
        ),
    ] = False,
    opset: Annotated[int, typer.Option(min=13, help="ONNX opset.", rich_help_panel=OUTPUT_PANEL)] = 17,
    exporter: Annotated[
        Exporter,
        typer.Option(
            help="torch's ONNX exporter; auto: dynamo, falling back to torchscript.", rich_help_panel=OUTPUT_PANEL
        ),
    ] = Exporter.auto,
    json_out: JsonOutputOpt = False,
    data: Annotated[
        str | None,
        typer.Option(help="Images for the parity check (default: run's val split).", rich_help_panel=IMAGES_PANEL),
    ] = None,
    qat: Annotated[
        int,
        typer.Option(
            "--qat",
            min=0,
            metavar="EPOCHS",
            rich_help_panel=RECIPE_PANEL,
            help="With --quantize, on an edgecls run: when post-training int8 misses the budget, fine-tune EPOCHS "
            "epochs with int8 rounding in the loop; kept only when it measures better, like every int8 repair.",
        ),
    ] = 0,
    model: Annotated[
        str | None,
        typer.Option(
            help="Your own model: FILE.py:FACTORY or module:FACTORY. Runs FILE.py (or imports the module) as "
            "Python code, by design: give only code you trust.",
            rich_help_panel=_MODEL_PANEL,
        ),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="State dict for --model.", rich_help_panel=_MODEL_PANEL)
    ] = None,
    trust_checkpoint: in_panel(TrustCheckpointOpt, _MODEL_PANEL) = False,  # type: ignore[valid-type]
    *,
    contract_options: ContractOptions,
    int8: Int8Settings,
) -> None:
    from edgecls.export.export_run import ExportOptions
    from edgecls.export.export_source import ExportSource, export_source

    options = ExportOptions(
        out_dir=str(out) if out else None,
        opset=opset,
        exporter=exporter.value,  # type: ignore[arg-type]  (a value of EXPORTERS: tests/test_cli_vocabulary.py)
        fp16=fp16,
        data=data,
        quantize=int8.quantize if quantize else None,
        int8_images=int8.images,
        qat_epochs=qat,
    )
    source = ExportSource(
        run=run, model=model, weights=weights, contract=contract_options, trust_checkpoint=trust_checkpoint
    )
    log = progress_log(json_out)
    report = export_source(source, options, log)
    if json_out:
        typer.echo(json.dumps(report.to_dict()))
    else:
        log(f"export written to {report.out_dir}: " + ", ".join(Path(p).name for p in report.files.values()))


def register(app: typer.Typer) -> None:
    app.command("export", help=EXPORT_HELP)(export_command)
