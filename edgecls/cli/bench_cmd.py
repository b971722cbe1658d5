"""``edgecls bench``: options in, :func:`edgecls.runtime.bench.benchmark.benchmark` called, its report printed.

Bench sweeps, so three of its options take lists where other commands take one value: ``--provider cpu,openvino``,
``--batch 1,8``, ``--threads 1,2`` (one value means what it means everywhere). ``--strict`` and ``--json`` are the
shared options of :mod:`edgecls.cli.options`; the JSON document goes to a file with ``--json-file``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgecls.cli.options import JsonOpt, StrictOpt, TrustCheckpointOpt
from edgecls.runtime.accuracy_budget import DEFAULT_MAX_DROP

if TYPE_CHECKING:
    from edgecls.runtime.bench.benchmark import BenchOptions

BENCH_HELP = """Measure latency, throughput, cold start and memory of ONNX variants across providers.

MODEL is an .onnx file, or a run/export directory meaning all its .onnx variants (fp32, fp16, int8).
Every model x provider x batch x threads runs in a fresh process: warm-up excluded, then p50/p90/p99,
mean/std/min, images/s, session creation time (cold start), peak RSS, model size and the providers really
used (a silent CPU fallback is flagged). Baselines in the same table: OpenCV DNN on each fp32 model, and
PyTorch eager on the source checkpoint when torch is installed and the checkpoint is known (provenance,
the run directory, or --checkpoint). `x fp32` compares each row with the fp32 onnxruntime CPU row.

--provider cpu,openvino measures both in one table; every row is compared with onnxruntime CPU fp32 on the same
inputs (top-1 agreement, max |output difference|). --provider auto measures every provider that can run here
and marks the fastest correct one. Rows are measured as `edgecls run` runs (no thread spinning); --spin on|both
adds onnxruntime's spinning threads (marked "spin"). --strict turns a provider that falls back to CPU into an
error row.

--data DIR (or --e2e, on synthetic JPEGs) adds decode/preprocess/infer/postprocess times per image, and
top-1 accuracy when DIR has one sub-folder per class. Without --data, a run's export is compared on the run's
test split (split.json); with no images at all there is no `agree %` (noise says nothing about int8).

OpenVINO rows come in f32 and, where the CPU has it, bf16 (--precision f32,bf16 to choose): each with its
agreement, so what bf16 buys and costs shows. --provider auto picks the fastest row whose top-1 agreement with
onnxruntime CPU fp32 on every image is within --max-drop points (default 1, as quantize); it needs images.

Example:  edgecls bench runs/digits/export --batch 1,8 --threads 1,2 --json-file bench.json --plot bench.png
"""

ProvidersOpt = Annotated[
    list[str],
    typer.Option(
        "--provider",
        "-p",
        help="Execution providers, comma-separated or repeated: cpu, openvino, cuda, tensorrt, ...; `all` "
        "available; `auto`: all, and mark the fastest correct one.",
    ),
]


def _int_list(text: str | None, flag: str) -> tuple[int, ...] | None:
    """``"1,8"`` -> ``(1, 8)`` (duplicates dropped); None for None."""
    from edgecls.runtime.errors import EdgeclsError

    if text is None:
        return None
    try:
        values = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError as e:
        raise EdgeclsError(f"{flag} takes comma-separated integers like 1,8; got {text!r}") from e
    if not values or min(values) < 1:
        raise EdgeclsError(f"{flag} values must be integers >= 1; got {text!r}")
    return tuple(dict.fromkeys(values))


def bench_command(
    models: Annotated[list[Path], typer.Argument(help=".onnx files, or run/export directories (all variants).")],
    provider: ProvidersOpt = ["cpu"],  # noqa: B006 - typer needs a list default for a repeatable option
    batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1",
    threads: Annotated[
        str | None, typer.Option(help="Intra-op thread counts, comma-separated (default: physical cores).")
    ] = None,
    runs: Annotated[int | None, typer.Option(min=1, help="Timed runs per configuration (default 100).")] = None,
    time_budget: Annotated[
        float | None, typer.Option(min=0.01, help="Seconds of timed runs per configuration instead of a run count.")
    ] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed warm-up runs.")] = 10,
    data: Annotated[
        Path | None, typer.Option(help="Image folder for end-to-end stages (+ accuracy with class sub-folders).")
    ] = None,
    e2e: Annotated[bool, typer.Option("--e2e", help="End-to-end stages (synthetic JPEGs without --data).")] = False,
    json_out: JsonOpt = False,
    json_file: Annotated[Path | None, typer.Option(help="Write the {environment, settings, rows} JSON here.")] = None,
    csv: Annotated[Path | None, typer.Option(help="Write the rows as CSV here.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a Markdown table here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Latency distribution (+ speed/accuracy) PNG.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Source checkpoint for the PyTorch eager baseline.")] = None,
    baselines: Annotated[
        bool, typer.Option("--baselines/--no-baselines", help="OpenCV DNN and PyTorch eager rows.")
    ] = True,
    strict: StrictOpt = False,
    spin: Annotated[
        str,
        typer.Option(help="onnxruntime thread spinning: off (what `edgecls run` does), on, or both (rows say `spin`)."),
    ] = "off",
    compare: Annotated[
        bool, typer.Option("--compare/--no-compare", help="Agreement with onnxruntime CPU fp32 on the same inputs.")
    ] = True,
    precision: Annotated[
        str | None,
        typer.Option(help="OpenVINO precisions, comma-separated: f32, bf16, f16 (default: f32, and bf16 where the "
                     "CPU has it)."),
    ] = None,
    max_drop: Annotated[
        float, typer.Option(min=0.0, help="--provider auto: points of top-1 agreement a provider may lose.")
    ] = DEFAULT_MAX_DROP,
    in_process: Annotated[
        bool,
        typer.Option("--in-process", help="Measure in this process (faster; cold start and peak RSS then accumulate)."),
    ] = False,
    trust_checkpoint: TrustCheckpointOpt = False,
) -> None:
    from edgecls.runtime.bench.benchmark import BenchOptions

    options = BenchOptions(
        models=tuple(models), providers=tuple(provider), batches=_int_list(batch, "--batch") or (1,),
        threads=_int_list(threads, "--threads"), runs=runs, time_budget=time_budget, warmup=warmup, data_dir=data,
        e2e=e2e, baselines=baselines, checkpoint=checkpoint, trust_checkpoint=trust_checkpoint, strict=strict,
        spin=spin, compare=compare,
        precisions=tuple(x.strip() for x in precision.split(",") if x.strip()) if precision else None,
        max_drop=max_drop,
        isolate=not in_process, json_path=json_file, csv_path=csv, markdown_path=markdown, plot_path=plot,
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
