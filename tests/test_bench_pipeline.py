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


def _sources() -> dict[str, ast.Module]:
    """``{repo-relative path: syntax tree}`` of every Python file of the library and the benchmark scripts."""
    return {
        path.relative_to(REPO).as_posix(): ast.parse(path.read_text(), filename=str(path))
        for d in SOURCE_DIRS
        for path in sorted((REPO / d).rglob("*.py"))
    }


def _step_mentions(tree: ast.Module) -> list[tuple[int, str]]:
    """Every place ``tree`` names a pipeline step, however spelled: imported (aliased or not), as a name, as
    ``module.step`` (called or passed around) or as the string of a ``getattr``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [(node.lineno, a.name) for a in node.names if a.name in ASSEMBLY_STEPS]
        elif isinstance(node, ast.Name) and node.id in ASSEMBLY_STEPS:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr in ASSEMBLY_STEPS:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Constant) and node.value in ASSEMBLY_STEPS:
            found.append((node.lineno, node.value))
    return found


def _bound_names(tree: ast.Module) -> dict[str, str]:
    """``{local name: dotted target}`` of the file's imports: ``import a.b as c`` -> c: a.b, ``import a.b`` -> a: a,
    ``from a import b as c`` -> c: a.b."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                bound[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                bound[a.asname or a.name] = f"{node.module}.{a.name}"
    return bound


def _called(tree: ast.Module) -> set[str]:
    """The dotted targets of every call in ``tree`` whose callee is an imported name or an attribute of one."""
    bound = _bound_names(tree)
    called = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        parts, func = [], node.func
        while isinstance(func, ast.Attribute):
            parts.insert(0, func.attr)
            func = func.value
        if isinstance(func, ast.Name) and func.id in bound:
            called.add(".".join([bound[func.id], *parts]))
    return called


def test_only_benchmark_assembles_the_pipeline_and_every_bench_caller_calls_it() -> None:
    sources = _sources()
    homes = {  # where each step is defined: the only other file that may name it (its own helpers call it)
        node.name: path
        for path, tree in sources.items()
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name in ASSEMBLY_STEPS
    }
    assert set(homes) == ASSEMBLY_STEPS, f"pipeline steps not found (renamed?): {ASSEMBLY_STEPS - set(homes)}"
    assembler = "runtime/bench/benchmark.py"
    assembling = [
        f"{path}:{line} {name}"
        for path, tree in sources.items()
        if path != assembler
        for line, name in _step_mentions(tree)
        if homes[name] != path
    ]
    assert not assembling, f"bench pipeline steps put together outside {assembler}: {assembling}"
    # ... and each step is used: by the assembler, or (torch_baselines) by a sibling in its own module
    used = {name for _, name in _step_mentions(sources[assembler])}
    used |= {name for home in set(homes.values()) for _, name in _step_mentions(sources[home]) if homes[name] == home}
    assert used == ASSEMBLY_STEPS, f"pipeline steps nothing calls: {ASSEMBLY_STEPS - used}"
    for caller in BENCH_CALLERS:
        assert "edgecls.runtime.bench.benchmark.benchmark" in _called(sources[caller]), f"{caller} never calls it"


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


def _edgecls_bench_options(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> BenchOptions:
    """The BenchOptions ``edgecls bench ARGV`` builds from its command line (the command's own parsing and
    defaults), caught where the command hands them to the benchmark."""
    from typer.testing import CliRunner

    from edgecls.cli import app, bench_cmd

    seen: list[BenchOptions] = []
    monkeypatch.setattr(bench_cmd, "_run", lambda options, _json: seen.append(options))
    result = CliRunner().invoke(app, ["bench", *argv])
    assert result.exit_code == 0 and len(seen) == 1, result.output
    return seen[0]


def test_the_demo_benches_as_edgecls_bench_does_but_for_what_it_says(bench_models, tmp_path: Path, monkeypatch):
    """The demo's bench is ``edgecls bench`` on the exported variants with ``--runs`` and the run's
    ``--checkpoint``, as the command parses them (a default of the command that changes reaches the demo too),
    but for three choices the command line cannot make, each doing what bench_options' docstring says."""
    from edgecls.demo import bench_options
    from edgecls.runtime.bench.benchmark import benchmark
    from edgecls.runtime.bench.rows import ENGINE_ORT, ENGINE_TORCH

    run_dir = bench_models.export_dir  # holds best.pt, the checkpoint the variants came from
    result = DemoResult(out=tmp_path, run_dir=run_dir, export_dir=bench_models.export_dir)
    demo = bench_options(result, DemoOptions(out=tmp_path, bench_runs=3))
    assert demo.models == (bench_models.fp32, bench_models.int8)  # the variants exported (no fp16 here)
    command = _edgecls_bench_options(
        [*map(str, demo.models), "--runs", "3", "--checkpoint", str(run_dir / "best.pt")], monkeypatch
    )
    # The demo's own choices: onnxruntime's thread count, no OpenCV DNN row, no run test split.
    assert dataclasses.replace(command, threads=(None,), opencv=False, run_split=False) == demo
    # ... and what they do, measured for real (in this process: isolation decides where, not which rows).
    rows = benchmark(dataclasses.replace(demo, isolate=False, warmup=1)).result.rows
    assert sorted((r.engine, Path(r.model).name) for r in rows if r.engine == ENGINE_ORT) == [
        (ENGINE_ORT, "model.int8.onnx"), (ENGINE_ORT, "model.onnx")
    ]
    assert {r.engine for r in rows} == {ENGINE_ORT, ENGINE_TORCH}  # PyTorch eager from the checkpoint, no OpenCV
    assert all(r.ok and r.runs == 3 and r.accuracy is None for r in rows), [r.to_dict() for r in rows]
    assert all(r.threads is None for r in rows if r.engine == ENGINE_ORT)  # the session chose its thread count


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
         str(bench_models.checkpoint), "--batch-size", "1", "--threads", "1", "--runs", "3", "--time-budget", "5",
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

