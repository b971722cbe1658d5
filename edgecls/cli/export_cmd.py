"""``edgecls export``: parses the flags into ExportSource + ExportOptions for edgecls.export.export_source.

Only typer and the standard library are imported here; torch/onnx load inside the command body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli import int8_options as int8
from edgecls.cli.choices import Exporter
from edgecls.cli.options import JsonOpt, OutDirOpt, TrustCheckpointOpt, contract_flags, progress_log
from edgecls.runtime.accuracy_budget import DEFAULT_MAX_DROP
from edgecls.runtime.contract.options import ContractOptions

EXPORT_HELP = """Export a trained run or checkpoint to ONNX with its contract, checked against PyTorch.

Writes model.onnx and model.golden.npz (and model.fp16.onnx with --fp16, model.int8.onnx plus
quantization_report.json/.md with --quantize) and export_report.json into --out (default RUN/export).
The export fails, writing nothing, if ONNX and PyTorch differ by more than 1e-4 or on any top-1 class on
real images from the run's data.

Bring your own torch model with --model FILE.py:FACTORY (or module:FACTORY), --labels and --input-size
(and the other contract flags for the preprocessing it expects).

Examples:
  edgecls export runs/digits --quantize
  edgecls export --model net.py:build --weights net.pt --labels labels.txt \\
      --input-size 224 --out export/
"""

@contract_flags
def export_command(
    run: Annotated[Path | None, typer.Argument(help="Run directory or checkpoint (.pt).")] = None,
    out: OutDirOpt = None,
    quantize: Annotated[bool, typer.Option("--quantize", help="Also write model.int8.onnx.")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write model.fp16.onnx (fp32 inputs/outputs).")] = False,
    calib: Annotated[str | None, typer.Option(help="Calibration images (default: the run's train split).")] = None,
    val: Annotated[str | None, typer.Option(help="Validation images (default: the run's val split).")] = None,
    data: Annotated[str | None, typer.Option(help="Images for the parity check (default: run's val split).")] = None,
    max_drop: int8.MaxDropOpt = DEFAULT_MAX_DROP,
    agreement_on: int8.AgreementOnOpt = int8.AgreementOn.decisive,
    reconstruct: int8.ReconstructOpt = int8.Reconstruct.auto,
    target: int8.TargetOpt = "auto",
    allow_over_budget: int8.AllowOverBudgetOpt = False,
    require_verified: int8.RequireVerifiedOpt = False,
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
    distill: int8.DistillOpt = "off",
    time_budget: int8.TimeBudgetOpt = int8.DEFAULT_TIME_BUDGET,
    opset: Annotated[int, typer.Option(min=13, help="ONNX opset.")] = 17,
    exporter: Annotated[
        Exporter, typer.Option(help="torch's ONNX exporter; auto: dynamo, falling back to torchscript.")
    ] = Exporter.auto,
    model: Annotated[
        str | None,
        typer.Option(
            help="Your own model: FILE.py:FACTORY or module:FACTORY. Runs FILE.py (or imports the module) as "
            "Python code, by design: give only code you trust."
        ),
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="State dict for --model.")] = None,
    json_out: JsonOpt = False,
    trust_checkpoint: TrustCheckpointOpt = False,
    *,
    contract_options: ContractOptions,
) -> None:
    from edgecls.export.export_run import ExportOptions
    from edgecls.export.export_source import ExportSource, export_source
    from edgecls.export.quant.distill_export import DistillOptions
    from edgecls.export.quant.options import Int8Images, QuantizeOptions

    options = ExportOptions(
        out_dir=str(out) if out else None,
        opset=opset,
        exporter=exporter.value,  # type: ignore[arg-type]  (a value of EXPORTERS: tests/test_cli_vocabulary.py)
        fp16=fp16,
        data=data,
        quantize=QuantizeOptions(
            max_drop=max_drop,
            agreement_on=agreement_on.value,
            reconstruct=reconstruct.value,
            reconstruct_seconds=time_budget,
            target=target,
            allow_over_budget=allow_over_budget,
            require_verified=require_verified,
        )
        if quantize
        else None,
        int8_images=Int8Images(calib=calib, val=val),
        qat_epochs=qat,
        distill=DistillOptions(mode=distill, time_budget=time_budget, progress=not json_out),
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
