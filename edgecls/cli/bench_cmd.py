"""``edgecls bench``: options in, :func:`edgecls.runtime.bench.benchmark.benchmark` called, its report printed.

Bench sweeps, so four of its options take lists where other commands take one value: ``--provider cpu,openvino``,
``--batch-size 1,8``, ``--threads 1,2``, ``--precision f32,bf16`` (one value means what it means everywhere;
:mod:`edgecls.cli.comma_lists`). ``--provider auto`` is the provider every command's ``auto`` runs on; ``all``
measures every provider here and marks the fastest correct one. ``--strict`` and ``--json`` are the shared options
of :mod:`edgecls.cli.options`; the JSON document goes to a file with ``--json-file``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgecls.cli.choices import Spin
from edgecls.cli.comma_lists import comma_list, joined, positive_int
from edgecls.cli.options import PROVIDER_HELP, JsonOpt, StrictOpt, TrustCheckpointOpt, in_panel
from edgecls.runtime.accuracy_budget import DEFAULT_MAX_DROP
from edgecls.runtime.providers.precision import Precision

if TYPE_CHECKING:
    from edgecls.runtime.bench.benchmark import BenchOptions

BENCH_HELP = """Measure latency, throughput, cold start and memory of ONNX variants across providers.

MODEL is an .onnx file, or a run/export directory meaning all its .onnx variants (fp32, fp16, int8).
Every model x provider x batch size x threads runs in a fresh process: warm-up excluded, then p50/p90/p99,
mean/std/min, images/s, session creation time (cold start), peak RSS, model size and the providers really
used (a silent CPU fallback is flagged). Baselines in the same table: OpenCV DNN on each fp32 model, and
PyTorch eager on the source checkpoint when torch is installed and the checkpoint is known (provenance,
the run directory, or --checkpoint). `x fp32` compares each row with the fp32 onnxruntime CPU row.

--provider cpu,openvino measures both in one table; every row is compared with onnxruntime CPU fp32 on the same
inputs (top-1 agreement, max |output difference|). --provider auto measures the provider `edgecls run` would
pick; --provider all measures every provider that can run here and marks the fastest correct one: the fastest
row whose top-1 agreement with onnxruntime CPU fp32 on every image is within --max-drop points (default 1, as
quantize; it needs images). Rows are measured as `edgecls run` runs (no thread spinning); --spin on|both adds
onnxruntime's spinning threads (marked "spin"). --strict turns a provider that falls back to CPU into an error
row.

--data DIR (or --e2e, on synthetic JPEGs) adds decode/preprocess/infer/postprocess times per image, and
top-1 accuracy when DIR has one sub-folder per class. Without --data, a run's export is compared on the run's
test split (split.json); with no images at all there is no `agree %` (noise says nothing about int8).

OpenVINO rows come in f32 and, where the CPU has it, bf16 (--precision f32,bf16 to choose): each with its
agreement, so what bf16 buys and costs shows.

Example:
  edgecls bench runs/digits/export --batch-size 1,8 --threads 1,2 \\
      --json-file bench.json --plot bench.png
"""

_SWEEP = "What is measured (lists: comma-separated or repeated)"
_TIMING = "Timing"
_IMAGES = "Images and correctness"
_BASELINES = "Baselines"
_OUTPUT = "Output"


def _sweep(flag: str, help: str, item: Callable[[str], Any], what: str = "integers >= 1",
           metavar: str = "N,...") -> Any:
    """A list flag of bench's sweep: comma-separated or repeated, each item typed as the same flag elsewhere."""
    return typer.Option(flag, help=help, metavar=metavar, parser=comma_list(item, what), rich_help_panel=_SWEEP)


_Strict = in_panel(StrictOpt, _IMAGES)
_TrustCheckpoint = in_panel(TrustCheckpointOpt, _BASELINES)
_Json = in_panel(JsonOpt, _OUTPUT)
ProvidersOpt = Annotated[
    list[str],
    typer.Option(
        "--provider", "-p",
        help=PROVIDER_HELP + "tensorrt, ...; all: every provider that can run here, the fastest correct one marked.",
        rich_help_panel=_SWEEP,
    ),
]


def bench_command(
    models: Annotated[list[Path], typer.Argument(help=".onnx files, or run/export directories (all variants).")],
    provider: ProvidersOpt = ["cpu"],  # noqa: B006 - typer needs a list default for a repeatable option
    # Each occurrence of a list flag parses to a list (comma_lists.comma_list); joined() makes the tuple.
    batch_size: Annotated[
        list[int] | None, _sweep("--batch-size", "Images per inference batch (default 1).", positive_int)
    ] = None,
    threads: Annotated[
        list[int] | None, _sweep("--threads", "Intra-op threads (default: physical cores).", positive_int)
    ] = None,
    precision: Annotated[
        list[Precision] | None,
        _sweep("--precision", "What OpenVINO computes in (default: f32, and bf16 where the CPU has it).", Precision,
               "f32, bf16 or f16", "[f32|bf16|f16],..."),
    ] = None,
    spin: Annotated[
        Spin,
        typer.Option(help="onnxruntime thread spinning: off (what `edgecls run` does), on, or both (rows say `spin`).",
                     rich_help_panel=_SWEEP),
    ] = Spin.off,
    runs: Annotated[
        int | None, typer.Option(min=1, help="Timed runs per configuration (default 100).", rich_help_panel=_TIMING)
    ] = None,
    time_budget: Annotated[
        float | None,
        typer.Option(min=0.01, help="Seconds of timed runs per configuration instead of a run count.",
                     rich_help_panel=_TIMING),
    ] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed warm-up runs.", rich_help_panel=_TIMING)] = 10,
    in_process: Annotated[
        bool,
        typer.Option("--in-process", help="Measure in this process (faster; cold start and peak RSS then accumulate).",
                     rich_help_panel=_TIMING),
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(help="Image folder for end-to-end stages (+ accuracy with class sub-folders).",
                     rich_help_panel=_IMAGES),
    ] = None,
    e2e: Annotated[
        bool, typer.Option("--e2e", help="End-to-end stages (synthetic JPEGs without --data).", rich_help_panel=_IMAGES)
    ] = False,
    compare: Annotated[
        bool,
        typer.Option("--compare/--no-compare", help="Agreement with onnxruntime CPU fp32 on the same inputs.",
                     rich_help_panel=_IMAGES),
    ] = True,
    max_drop: Annotated[
        float,
        typer.Option(min=0.0, help="--provider all: points of top-1 agreement the marked provider may lose.",
                     rich_help_panel=_IMAGES),
    ] = DEFAULT_MAX_DROP,
    strict: _Strict = False,
    baselines: Annotated[
        bool,
        typer.Option("--baselines/--no-baselines", help="OpenCV DNN and PyTorch eager rows.",
                     rich_help_panel=_BASELINES),
    ] = True,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Source checkpoint for the PyTorch eager baseline.", rich_help_panel=_BASELINES),
    ] = None,
    trust_checkpoint: _TrustCheckpoint = False,
    json_out: _Json = False,
    json_file: Annotated[
        Path | None, typer.Option(help="Write the {environment, settings, rows} JSON here.", rich_help_panel=_OUTPUT)
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="Write the rows as CSV here.", rich_help_panel=_OUTPUT)] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a Markdown table here.", rich_help_panel=_OUTPUT)] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Latency distribution (+ speed/accuracy) PNG.", rich_help_panel=_OUTPUT)
    ] = None,
) -> None:
    from edgecls.runtime.bench.benchmark import BenchOptions

    options = BenchOptions(
        models=tuple(models), providers=tuple(provider), batches=joined(batch_size) or (1,),  # type: ignore[arg-type]
        threads=joined(threads), runs=runs, time_budget=time_budget, warmup=warmup,  # type: ignore[arg-type]
        data_dir=data, e2e=e2e, baselines=baselines, checkpoint=checkpoint, trust_checkpoint=trust_checkpoint,
        strict=strict, spin=spin.value, compare=compare, precisions=joined(precision),  # type: ignore[arg-type]
        max_drop=max_drop, isolate=not in_process, json_path=json_file, csv_path=csv, markdown_path=markdown,
        plot_path=plot,
    )
    _run(options, json_out)


def _run(options: BenchOptions, json_out: bool) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgecls.runtime.bench.benchmark import benchmark
    from edgecls.runtime.bench.report import print_report
    from edgecls.runtime.terminal.text import markup, rich_text

    # With --json stdout holds the document alone: progress and notes go to stderr.
    console = Console(stderr=json_out)
    if not console.is_terminal:  # piped or captured: long lines beat a table folded into 80 columns
        console = Console(stderr=json_out, width=max(console.width, 200))
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("measuring", total=None)

        def progress(done: int, total: int, what: str) -> None:
            # The description is rendered as markup: ``what`` names a model file.
            bar.update(task, completed=done, total=total, description=f"measuring {markup(what)}")

        outcome = benchmark(options, progress)
    for note in outcome.notes:
        console.print(f"[yellow]note: {markup(note)}[/]", highlight=False)
    if json_out:
        typer.echo(json.dumps(outcome.result.to_dict()))
    else:
        print_report(outcome.result, console)
    for path in outcome.written:
        console.print(rich_text(f"wrote {path}"), highlight=False)
    if not any(r.ok for r in outcome.result.rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("bench", help=BENCH_HELP)(bench_command)
