"""``edgecls quantize``: parses the flags into QuantizeFileOptions + TorchSource for export.quant.quantize_source.

Only typer and the standard library are imported here; onnx/onnxruntime load inside the command body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli import int8_options as int8
from edgecls.cli.options import JsonOpt, OutDirOpt, contract_flags, progress_log
from edgecls.runtime.accuracy_budget import DEFAULT_MAX_DROP
from edgecls.runtime.contract.options import ContractOptions

QUANTIZE_HELP = """Make a static QDQ int8 model of any ONNX classifier, within an accuracy budget.

Calibrates on --calib images through the runtime's preprocessing, measures top-1 (labelled --val folders
named after the model's labels, or builtin sets) or agreement with fp32 (unlabelled images: on the images whose fp32
answer survives +-1 grey level of noise and a JPEG q95 re-encode, --agreement-on), and ships the fastest
model whose drop is <= --max-drop points. Without --val, the --calib images are split (seeded,
disjoint) into calibration and validation parts: no image is graded that was calibrated on. The validation
images are split again: half choose the model, half grade it. Writes MODEL-stem.int8.onnx and
quantization_report.json/.md (+ the accuracy/speed frontier plot) into --out (default: beside MODEL).

The contract comes from the model file; the contract flags override its fields, and a file without one
needs at least --labels and --input-size.

The verdict prints the 95% interval of the drop. It is "unverified" when the held-out images cannot resolve
the budget (one image is worth more than it, fp32 gets every labelled image right, or the interval is wider
than the budget): the file is written, but nothing shows it is within budget.

With --model FILE.py:FACTORY (the torch model MODEL was exported from, --weights for its state dict), int8
that misses the budget is learned from the float model on the --calib images (--distill, --time-budget).

Exit status: 0 within budget or unverified (4 with --require-verified), 3 over budget (nothing written at the
int8 name unless --allow-over-budget), 2 could not run.

Example:
  edgecls quantize model.onnx --calib data/train --val data/val --max-drop 1
"""


@contract_flags
def quantize_command(
    model: Annotated[Path, typer.Argument(help="fp32 ONNX classifier.")],
    calib: Annotated[str, typer.Option(help="Calibration images: a folder or builtin:NAME.")],
    val: Annotated[
        str | None,
        typer.Option(help="Validation images (labelled class folders or builtin:NAME; default: part of --calib)."),
    ] = None,
    max_drop: int8.MaxDropOpt = DEFAULT_MAX_DROP,
    agreement_on: int8.AgreementOnOpt = int8.AgreementOn.decisive,
    reconstruct: int8.ReconstructOpt = int8.Reconstruct.auto,
    target: int8.TargetOpt = "auto",
    allow_over_budget: int8.AllowOverBudgetOpt = False,
    require_verified: int8.RequireVerifiedOpt = False,
    out: OutDirOpt = None,
    calib_images: Annotated[int, typer.Option(min=1, help="Use at most this many calibration images.")] = 500,
    val_images: Annotated[int, typer.Option(min=1, help="Use at most this many validation images.")] = 1000,
    torch_model: Annotated[
        str | None,
        typer.Option("--model", help="The torch model MODEL was exported from (FILE.py:FACTORY or module:FACTORY)."),
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="State dict for --model.")] = None,
    distill: int8.DistillOpt = None,
    time_budget: int8.TimeBudgetOpt = int8.DEFAULT_TIME_BUDGET,
    json_out: JsonOpt = False,
    *,
    contract_options: ContractOptions,
) -> None:
    from edgecls.export.quant.options import Int8Images, QuantizeOptions, user_cache_dir
    from edgecls.export.quant.quantize_file import QuantizeFileOptions
    from edgecls.export.quant.quantize_source import TorchSource, quantize_source

    options = QuantizeFileOptions(
        images=Int8Images(calib=calib, val=val, calib_images=calib_images, val_images=val_images),
        out_dir=str(out) if out else None,
        contract=contract_options,
        quantize=QuantizeOptions(
            max_drop=max_drop,
            agreement_on=agreement_on.value,
            reconstruct=reconstruct.value,
            reconstruct_seconds=time_budget,
            target=target,
            allow_over_budget=allow_over_budget,
            require_verified=require_verified,
            cache_dir=str(user_cache_dir()),
        ),
    )
    torch_source = TorchSource(
        model=torch_model, weights=weights, distill=distill, time_budget=time_budget, progress=not json_out
    )
    report = quantize_source(model, options, torch_source, progress_log(json_out))
    if json_out:
        typer.echo(json.dumps(report.to_dict()))


def register(app: typer.Typer) -> None:
    app.command("quantize", help=QUANTIZE_HELP)(quantize_command)
