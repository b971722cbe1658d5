"""``edgecls bench``: a thin adapter over :func:`edgecls.runtime.bench.run_benchmark` and its reports.

The edgecls side of the benchmark lives here: expanding run/export directories into their ONNX variants,
and plugging in the PyTorch eager baseline only when torch is importable (the runtime never imports it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from edgecls.runtime.bench import BenchTarget

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
top-1 accuracy when DIR has one sub-folder per class.

Example:  edgecls bench runs/digits/export --batch 1,8 --threads 1,2 --json bench.json --plot bench.png
"""

_VARIANT_ORDER = {"fp32": 0, "fp16": 1, "int8": 2}


def _int_list(text: str | None, what: str) -> list[int]:
    from edgecls.runtime.errors import EdgeclsError

    try:
        values = [int(x) for x in (text or "").replace(" ", "").split(",") if x]
    except ValueError as e:
        raise EdgeclsError(f"--{what} takes comma-separated integers like 1,8; got {text!r}") from e
    if not values or min(values) < 1:
        raise EdgeclsError(f"--{what} values must be integers >= 1; got {text!r}")
    return list(dict.fromkeys(values))


def expand_models(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """ONNX files to measure and checkpoints found in run directories (for the PyTorch baseline).

    A directory means its ``*.onnx`` files, or those one level down (``run/export/``) when it has none.
    """
    from edgecls.runtime.errors import EdgeclsError

    models: list[Path] = []
    checkpoints: list[Path] = []
    for p in paths:
        if p.is_file():
            models.append(p)
            continue
        if not p.is_dir():
            raise EdgeclsError(f"{p}: no such model file or directory")
        found = sorted(p.glob("*.onnx")) or sorted(p.glob("*/*.onnx"))
        if not found:
            raise EdgeclsError(f"{p}: no .onnx models in this directory or its sub-directories")
        models += found
        checkpoints += [c for c in (p / "best.pt", p.parent / "best.pt") if c.is_file()]
        checkpoints += exported_from(p)
    return list(dict.fromkeys(models)), list(dict.fromkeys(checkpoints))


def exported_from(export_dir: Path) -> list[Path]:
    """The checkpoint an export directory was made from, as its ``export_report.json`` records it.

    ``export RUN --out DIR`` puts the models away from the run; the report is the export's own record of the
    source. (torch_baselines still checks the checkpoint's SHA-256 against the models' provenance.)
    """
    import json

    out: list[Path] = []
    for report in (export_dir / "export_report.json", *sorted(export_dir.glob("*/export_report.json"))):
        try:
            source = json.loads(report.read_text()).get("source_checkpoint")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(source, str) and Path(source).is_file():
            out.append(Path(source))
    return out


def _sorted_targets(targets: list[BenchTarget]) -> list[BenchTarget]:
    return sorted(targets, key=lambda t: (t.family, _VARIANT_ORDER.get(t.variant, 9), t.label))


def _torch_targets(
    targets: list[BenchTarget], checkpoint: Path | None, found: list[Path]
) -> tuple[list[BenchTarget], list[str]]:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return [], ["torch is not installed: no PyTorch eager baseline"]
    from edgecls.training.torch_baseline import torch_baselines

    baselines, notes = torch_baselines(targets, checkpoint)
    if not baselines and checkpoint is None and found:
        baselines, notes = torch_baselines(targets, found[0])
    return baselines, notes


def bench_command(
    models: Annotated[
        list[Path], typer.Argument(help=".onnx files, or run/export directories (all variants).")
    ],
    provider: Annotated[
        list[str],
        typer.Option(
            "--provider",
            "-p",
            help="Execution providers, comma-separated or repeated: cpu, openvino, cuda, tensorrt, ...; `all` "
            "available; `auto`: all, and mark the fastest correct one.",
        ),
    ] = ["cpu"],  # noqa: B006
    batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1",
    threads: Annotated[
        str | None, typer.Option(help="Intra-op thread counts, comma-separated (default: physical cores).")
    ] = None,
    runs: Annotated[
        int | None, typer.Option(min=1, help="Timed runs per configuration (default 100).")
    ] = None,
    time_budget: Annotated[
        float | None,
        typer.Option(min=0.01, help="Seconds of timed runs per configuration instead of a run count."),
    ] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed warm-up runs.")] = 10,
    data: Annotated[
        Path | None,
        typer.Option(help="Image folder for end-to-end stages (+ accuracy with class sub-folders)."),
    ] = None,
    e2e: Annotated[
        bool, typer.Option("--e2e", help="End-to-end stages (synthetic JPEGs without --data).")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write {environment, rows} JSON here.")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the rows as CSV here.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a Markdown table here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Latency distribution (+ speed/accuracy) PNG.")] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Source checkpoint for the PyTorch eager baseline.")
    ] = None,
    baselines: Annotated[
        bool, typer.Option("--baselines/--no-baselines", help="OpenCV DNN and PyTorch eager rows.")
    ] = True,
    strict: Annotated[
        bool, typer.Option("--strict", help="A provider that falls back to CPU is an error row, not a flagged one.")
    ] = False,
    spin: Annotated[
        str,
        typer.Option(
            help="onnxruntime thread spinning: off (what `edgecls run` does), on, or both (rows say `spin`)."
        ),
    ] = "off",
    compare: Annotated[
        bool,
        typer.Option("--compare/--no-compare", help="Agreement with onnxruntime CPU fp32 on the same inputs."),
    ] = True,
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process", help="Measure in this process (faster; cold start and peak RSS then accumulate)."
        ),
    ] = False,
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgecls.runtime.bench import model_targets, run_benchmark
    from edgecls.runtime.bench_env import collect_environment
    from edgecls.runtime.bench_opencv import opencv_baselines
    from edgecls.runtime.bench_report import print_report, write_csv, write_json, write_markdown, write_plot

    console = Console()
    if not console.is_terminal:  # piped or captured: long lines beat a table folded into 80 columns
        console = Console(width=max(console.width, 200))
    batches = _int_list(batch, "batch")
    spins = {"off": [False], "on": [True], "both": [False, True]}.get(spin)
    if spins is None:
        from edgecls.runtime.errors import EdgeclsError

        raise EdgeclsError(f"--spin takes off, on or both; got {spin!r}")
    thread_list = _int_list(threads, "threads") if threads else [collect_environment().physical_cores]
    files, found_checkpoints = expand_models(models)
    targets = _sorted_targets(model_targets(files))
    extra: list[BenchTarget] = []
    if baselines:
        extra += opencv_baselines(targets)
        torch_rows, notes = _torch_targets(targets, checkpoint, found_checkpoints)
        extra += torch_rows
        for note in notes:
            console.print(f"[yellow]note: {note}[/]", highlight=False)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("measuring", total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=f"measuring {what}")

        result = run_benchmark(
            targets,
            providers=provider,
            batches=batches,
            threads=thread_list,
            runs=runs,
            time_budget=time_budget,
            warmup=warmup,
            data_dir=data,
            e2e=e2e,
            baselines=extra,
            isolate=not in_process,
            progress=progress,
            spins=spins,
            strict=strict,
            compare=compare,
        )
    print_report(result, console)
    for path, write in (
        (json_out, write_json),
        (csv_out, write_csv),
        (markdown, write_markdown),
        (plot, write_plot),
    ):
        if path is not None:
            write(result, path)
            console.print(f"wrote {path}", highlight=False)
    if not any(r.ok for r in result.rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("bench", help=BENCH_HELP)(bench_command)
