"""``edgecls demo``: the whole pipeline on built-in data (adapter over edgecls.demo.run_demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.choices import Arch
from edgecls.cli.options import OutDirOpt

DEMO_HELP = """Run the whole pipeline on built-in data, in a few minutes on a laptop CPU.

Trains the default edge architecture (MobileNetV2) on scikit-learn's real handwritten digits, evaluates it,
exports fp32 + int8 + fp16 ONNX (parity-checked, int8 within a 1-point accuracy budget), classifies sample
images through the torch-free runtime, benchmarks every variant against PyTorch eager and writes
report.md / report.html with the plots. Ends with the exact commands to try next.

--out is the demo's folder: a previous demo there is replaced, any other folder is refused. It ends with
report.md, report.html and summary.json (every variant's accuracy, size and latency, and the machine).

Example:  edgecls demo --out demo_out
"""


def demo_command(
    out: OutDirOpt = Path("demo_out"),
    data: Annotated[
        str, typer.Option(help="builtin:digits (real handwritten digits) or builtin:shapes.")
    ] = "builtin:digits",
    arch: Annotated[Arch, typer.Option(help="Architecture to train.")] = Arch.mobilenetv2,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs (fast default).")] = 12,
    fp16: Annotated[bool, typer.Option("--fp16/--no-fp16", help="Also export the fp16 variant.")] = True,
    bench_runs: Annotated[int, typer.Option(min=10, help="Timed runs per variant.")] = 200,
) -> None:
    import time

    from rich.console import Console
    from rich.table import Table

    from edgecls.demo import run_demo
    from edgecls.demo_results import SUMMARY_HEADER, DemoOptions, next_commands, summary_rows
    from edgecls.runtime.terminal.text import markup, plain, rich_text

    console = Console(stderr=True)
    started = time.perf_counter()

    def narrate(title: str, detail: str) -> None:
        if title:
            console.rule(f"[bold cyan]{markup(title)}")
            console.print(rich_text(detail))  # details quote paths and the data's class names
        else:
            console.print(f"  [dim]{markup(detail)}[/dim]")

    result = run_demo(
        DemoOptions(out=out, data=data, arch=arch.value, epochs=epochs, fp16=fp16, bench_runs=bench_runs), narrate
    )
    table = Table(title=rich_text(f"edgecls demo: {arch} on {data}"))
    for h in SUMMARY_HEADER:
        table.add_column(h, justify="left" if h in ("variant", "note") else "right")
    for row in summary_rows(result.variants):
        table.add_row(*map(rich_text, row))
    out_console = Console()
    out_console.print(table)
    correct = sum(s["correct"] for s in result.samples)
    out_console.print(f"sample images classified by the int8 model: {correct}/{len(result.samples)} correct")
    report = f"report: {result.report_html}  (and {result.report_md}; numbers in {out / 'summary.json'})"
    out_console.print(rich_text(report))
    out_console.print(f"finished in {time.perf_counter() - started:.0f} s. Next, try:")
    for cmd in next_commands(result):
        out_console.print(plain(f"  {cmd}"), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo", help=DEMO_HELP)(demo_command)
