"""``edgecls quantize``: parses the flags into QuantizeFileOptions for export.quant.quantize_file.

Only typer and the standard library are imported here; onnx/onnxruntime load inside the command body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.int8_options import JsonOutputOpt, OutDirOutputOpt, int8_flags
from edgecls.cli.options import contract_flags, progress_log
from edgecls.export.quant.options import Int8Settings
from edgecls.runtime.contract.options import ContractOptions

# Help paragraphs are one line each: the terminal wraps them at its width without breaking a sentence early.
QUANTIZE_HELP = (
    "Make a static QDQ int8 model of any ONNX classifier, within an accuracy budget.\n\n"
    "Calibrates on --calib images through the runtime's preprocessing, measures top-1 (labelled --val folders "
    "named after the model's labels, or builtin sets) or agreement with fp32 (unlabelled images: on the "
    "images whose fp32 answer survives +-1 grey level of noise and a JPEG q95 re-encode, --agreement-on), and "
    "ships the fastest model whose drop is <= --max-drop points. When post-training int8 misses the budget, "
    "each layer's rounding is chosen from the float model's outputs (--reconstruct). Without --val, the "
    "--calib images are split (seeded, disjoint) into calibration and validation parts: no image is graded "
    "that was calibrated on. The validation images are split again: half choose the model, half grade it. "
    "Writes MODEL-stem.int8.onnx and quantization_report.json/.md (+ the accuracy/speed frontier plot) into "
    "--out (default: beside MODEL).\n\n"
    "The contract comes from the model file; the contract flags override its fields, and a file without one "
    "needs at least --labels and --input-size.\n\n"
    'The verdict prints the 95% interval of the drop. It is "unverified" when the held-out images cannot '
    "resolve the budget (one image is worth more than it, fp32 gets every labelled image right, or the "
    "interval is wider than the budget): the file is written, but nothing shows it is within budget.\n\n"
    "Exit status: 0 within budget or unverified (4 with --require-verified), 3 over budget (nothing written "
    "at the int8 name unless --allow-over-budget), 2 could not run.\n\n"
    "Example: edgecls quantize model.onnx --calib data/train --val data/val"
)


@contract_flags
@int8_flags
def quantize_command(
    model: Annotated[Path, typer.Argument(help="fp32 ONNX classifier.")],
    out: OutDirOutputOpt = None,
    json_out: JsonOutputOpt = False,
    *,
    contract_options: ContractOptions,
    int8: Int8Settings,
) -> None:
    from edgecls.export.quant.quantize_file import QuantizeFileOptions, quantize_file

    options = QuantizeFileOptions(
        images=int8.images, out_dir=str(out) if out else None, contract=contract_options, quantize=int8.quantize
    )
    report = quantize_file(model, options, progress_log(json_out))
    if json_out:
        typer.echo(json.dumps(report.to_dict()))


def register(app: typer.Typer) -> None:
    app.command("quantize", help=QUANTIZE_HELP)(quantize_command)
