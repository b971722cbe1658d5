"""The bench pipeline is assembled once (``edgecls.runtime.bench.benchmark.benchmark``): ``edgecls bench``, the
demo's bench step and the benchmark scripts call it with their own options, and the scripts time with the one
timing loop. Where they could drift apart again, these tests fail."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgecls.demo_results import DemoOptions, DemoResult
from edgecls.runtime.bench.benchmark import BenchOptions

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("edgecls", "runtime", "export", "benchmarks")
# The steps of the pipeline (targets -> baselines -> images -> sweep): only benchmark() may put them together.
ASSEMBLY_STEPS = {"run_benchmark", "opencv_baselines", "torch_baselines", "installed_torch_baselines", "run_test_split"}
# Callers that measure what `edgecls bench` measures, with options of their own.
BENCH_CALLERS = ("edgecls/demo.py", "benchmarks/run_benchmarks.py", "benchmarks/openvino_vs_ort.py")
# Scripts that time calls themselves: through the shared loop, never with a clock of their own.
LOOP_USERS = ("benchmarks/openvino_vs_ort.py", "benchmarks/runtime_overhead.py")
CLOCKS = {"perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns", "time", "time_ns", "process_time"}


def _imports(path: Path) -> dict[str, str]:
    """``{name: module}`` of every ``from module import name`` in the file, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = (node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom))
    return {a.name: node.module or "" for node in found for a in node.names}


def test_only_benchmark_assembles_the_pipeline_and_every_bench_caller_calls_it() -> None:
    assembling = {
        f"{path.relative_to(REPO).as_posix()}: {name}"
        for d in SOURCE_DIRS
        for path in (REPO / d).rglob("*.py")
        for name in ASSEMBLY_STEPS & set(_imports(path))
        if path != REPO / "runtime" / "bench" / "benchmark.py"
    }
    assert not assembling, "bench pipeline steps put together outside runtime/bench/benchmark.py"
    for caller in BENCH_CALLERS:
        assert _imports(REPO / caller).get("benchmark") == "edgecls.runtime.bench.benchmark", caller


def test_the_timing_scripts_use_the_shared_loop_and_no_clock_of_their_own() -> None:
    for script in LOOP_USERS:
        path = REPO / script
        tree = ast.parse(path.read_text(), filename=str(path))
        clocks = [
            f"{script}:{n.lineno} time.{n.func.attr}"
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in CLOCKS
            and isinstance(n.func.value, ast.Name) and n.func.value.id == "time"
        ]
        assert not clocks, clocks
        loop = {m for name, m in _imports(path).items() if name in ("time_calls", "measure_latency")}
        assert loop and all(m.endswith(".latency") for m in loop), (script, loop)  # runtime/bench/ or runtime/
        assert all(importlib.util.find_spec(m) for m in loop), f"{script} imports the timing loop from {loop}"


def _differences(options: BenchOptions) -> dict[str, object]:
    """The fields ``options`` sets away from what ``edgecls bench MODELS`` (the same models) would use."""
    bench = BenchOptions(models=options.models)
    return {
        f.name: getattr(options, f.name)
        for f in dataclasses.fields(BenchOptions)
        if getattr(options, f.name) != getattr(bench, f.name)
    }


def test_the_demo_benches_as_edgecls_bench_does_but_for_what_it_says(bench_models, tmp_path: Path) -> None:
    """A default of bench that changes (warm-up, spinning, agreement, isolation...) reaches the demo too; the
    demo's own choices are these, and its docstring says why."""
    from edgecls.demo import bench_options

    result = DemoResult(out=tmp_path, run_dir=tmp_path / "run", export_dir=bench_models.export_dir)
    options = bench_options(result, DemoOptions(out=tmp_path, bench_runs=7))
    assert options.models == (bench_models.fp32, bench_models.int8)  # the variants exported (no fp16 here)
    assert _differences(options) == {
        "threads": (None,),  # onnxruntime's own thread count, as the demo's summary always measured
        "runs": 7,
        "opencv": False,
        "checkpoint": tmp_path / "run" / "best.pt",
        "run_split": False,
    }


@pytest.mark.slow  # 7-15 s on the loaded 2-core box: torch, OpenCV and onnxruntime in two processes
def test_run_benchmarks_gives_the_rows_edgecls_bench_gives_with_the_same_options(bench_models, monkeypatch) -> None:
    """One family measured by the script and by `edgecls bench` with the same flags: the same rows (baselines
    included), the same agreement and accuracy on the same images, the same settings."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import run_benchmarks
    from repeat_summary import Family

    family = Family("cnn", 32, bench_models.export_dir, bench_models.checkpoint, True, bench_models.images)
    flags = ["--batches", "1", "--threads", "1", "--max-runs", "3", "--time-budget", "5", "--warmup", "1"]
    script = run_benchmarks.measure_once([family], run_benchmarks.parse_args([*flags, "--in-process"]), 0)
    models = [str(p) for p in sorted(bench_models.export_dir.glob("model*.onnx"))]
    cli = subprocess.run(
        [sys.executable, "-m", "edgecls", "bench", *models, "--data", str(bench_models.images), "--checkpoint",
         str(bench_models.checkpoint), "--batch", "1", "--threads", "1", "--runs", "3", "--time-budget", "5",
         "--warmup", "1", "--in-process", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-3000:]
    doc = json.loads(cli.stdout)

    def numbers(rows: list[dict]) -> dict[tuple, tuple]:
        keys = ("label", "engine", "provider", "batch", "threads")
        values = ("runs", "error", "agreement", "agreement_images", "accuracy", "accuracy_images")
        return {tuple(r[k] for k in keys): tuple(r[v] for v in values) for r in rows}

    mine = numbers([r.to_dict() for r in script.rows])
    assert mine == numbers(doc["rows"])
    assert {engine for _, engine, *_ in mine} == {"onnxruntime", "opencv-dnn", "pytorch-eager"}
    labelled = len(list(bench_models.images.rglob("*.png")))  # the corrupt JPEG beside them is not counted
    assert all(acc is not None and n == labelled for _, _, _, _, acc, n in mine.values())
    assert script.settings == doc["settings"]

