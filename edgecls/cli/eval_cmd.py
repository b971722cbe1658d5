"""``edgecls eval``: parses the flags into one EvalOptions for edgecls.evaluation.evaluate, prints the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgecls.cli.choices import Split
from edgecls.cli.options import BatchSizeOpt, JsonOpt, OutDirOpt, ProviderOpt, TrustCheckpointOpt

if TYPE_CHECKING:
    from rich.console import Console

    from edgecls.evaluation.evaluate import EvalResult

EVAL_HELP = """Evaluate a run directory, checkpoint or any .onnx variant (fp32, fp16, int8) on labelled data.

Reports top-1 (and top-5 with more than 5 classes), per-class precision/recall/F1 and the confusion matrix
(written as metrics.json and confusion.png under --out, default eval/ beside the model). DATA defaults to the
data the model was trained on, and --split test is then the very split training held out. ONNX models are
evaluated through the runtime (onnxruntime + OpenCV, no torch).

Example:
  edgecls eval runs/digits/export/model.int8.onnx builtin:digits --json
"""


def eval_command(
    model: Annotated[str, typer.Argument(help="Run directory, checkpoint (.pt) or .onnx model.")],
    data: Annotated[
        str | None,
        typer.Argument(help="Labelled data (folder or builtin:NAME); default: the model's training data."),
    ] = None,
    split: Annotated[Split, typer.Option(help="Which images of DATA (all: every image of DATA).")] = Split.test,
    seed: Annotated[int | None, typer.Option(help="Split seed (default: the training seed).")] = None,
    out: OutDirOpt = None,
    provider: ProviderOpt = "auto",
    batch_size: BatchSizeOpt = 64,
    json_out: JsonOpt = False,
    trust_checkpoint: TrustCheckpointOpt = False,
) -> None:
    from rich.console import Console

    from edgecls.evaluation.evaluate import EvalOptions, default_eval_dir, evaluate

    result = evaluate(
        EvalOptions(
            model=model,
            data=data,
            split=split.value,
            seed=seed,
            out_dir=out if out is not None else default_eval_dir(Path(model)),
            provider=provider,
            batch_size=batch_size,
            trust_checkpoint=trust_checkpoint,
        )
    )
    if json_out:
        typer.echo(json.dumps(result.to_dict()))
        return
    _print_eval(Console(), result)


def _print_eval(console: Console, result: EvalResult) -> None:
    from rich.table import Table

    from edgecls.runtime.terminal.text import rich_text

    m = result.metrics
    # Model path, data argument and class names (folder names) are outside text: never markup.
    table = Table(title=rich_text(f"{result.model} on {result.data} [{result.split}]: {m.n} images"))
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for i, c in enumerate(m.classes):
        table.add_row(rich_text(c), f"{m.precision[i]:.3f}", f"{m.recall[i]:.3f}", f"{m.f1[i]:.3f}", str(m.support[i]))
    console.print(table)
    line = f"top-1 {100 * m.top1:.2f}%" + (f"   top-5 {100 * m.top5:.2f}%" if m.top5 is not None else "")
    console.print(f"[bold]{line}[/bold]")
    if result.skipped:
        console.print(f"[yellow]{len(result.skipped)} unreadable image(s) skipped[/yellow]")
    if result.out_dir:
        console.print(rich_text(f"metrics and confusion matrix written to {result.out_dir}"))


def register(app: typer.Typer) -> None:
    app.command("eval", help=EVAL_HELP)(eval_command)
