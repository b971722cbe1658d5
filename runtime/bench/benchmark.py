"""The bench pipeline, assembled once: model paths in, a measured :class:`BenchResult` and its report files out.

:func:`benchmark` expands run/export directories into their ONNX variants (targets), adds the baselines (OpenCV
DNN on each fp32 file; PyTorch eager on the source checkpoint when torch is installed), runs the sweep
(:func:`edgecls.runtime.bench.sweep.run_benchmark`: sessions, timing, agreement, rows) and writes the files the
options name. Without ``--data``, a run's export is compared on the run's own test split
(:mod:`edgecls.runtime.bench.run_split`).

``edgecls bench``, ``edgecls demo`` (its bench step) and ``benchmarks/run_benchmarks.py`` /
``benchmarks/openvino_vs_ort.py`` all call :func:`benchmark`, each with its own :class:`BenchOptions`, so a
change to the pipeline reaches every number edgecls publishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgecls.runtime.accuracy_budget import DEFAULT_MAX_DROP
from edgecls.runtime.bench.baselines.opencv_dnn import opencv_baselines
from edgecls.runtime.bench.baselines.torch_eager import installed_torch_baselines
from edgecls.runtime.bench.env import collect_environment
from edgecls.runtime.bench.plot import write_plot
from edgecls.runtime.bench.report import write_markdown
from edgecls.runtime.bench.result_files import write_csv, write_json
from edgecls.runtime.bench.rows import BenchError, BenchResult, BenchTarget
from edgecls.runtime.bench.run_split import run_test_split
from edgecls.runtime.bench.sweep import ProgressFn, run_benchmark
from edgecls.runtime.bench.targets import expand_models, model_targets, run_checkpoints, sorted_targets
from edgecls.runtime.inference.latency import DEFAULT_WARMUP
from edgecls.runtime.providers.precision import Precision

#: ``--spin`` values -> the spinning settings measured.
SPIN_MODES: dict[str, tuple[bool, ...]] = {"off": (False,), "on": (True,), "both": (False, True)}


@dataclass(frozen=True)
class BenchOptions:
    """Everything ``edgecls bench`` takes, and what its other callers choose differently.

    ``threads`` None means one setting: the physical core count; a None inside the tuple leaves the thread count
    to onnxruntime (the demo's rows). ``opencv`` (with ``baselines``) adds the OpenCV DNN rows; ``run_split``
    compares a run's export on the run's test split when no ``data_dir`` is given.
    """

    models: tuple[Path, ...]
    providers: tuple[str, ...] = ("cpu",)
    batches: tuple[int, ...] = (1,)
    threads: tuple[int | None, ...] | None = None
    runs: int | None = None
    time_budget: float | None = None
    warmup: int = DEFAULT_WARMUP
    data_dir: Path | None = None
    e2e: bool = False
    baselines: bool = True
    opencv: bool = True  # OpenCV DNN rows among the baselines (the demo compares with PyTorch eager alone)
    checkpoint: Path | None = None
    trust_checkpoint: bool = False  # the eager baseline may run code from the checkpoint (--trust-checkpoint)
    strict: bool = False
    spin: str = "off"  # off | on | both
    compare: bool = True
    precisions: tuple[Precision, ...] | None = None  # OpenVINO rows; None: f32, plus bf16 where the CPU has it
    max_drop: float = DEFAULT_MAX_DROP  # --provider all: points of agreement the marked provider may lose
    isolate: bool = True
    run_split: bool = True  # without data_dir: a run's test split, where the run recorded one
    json_path: Path | None = None
    csv_path: Path | None = None
    markdown_path: Path | None = None
    plot_path: Path | None = None


@dataclass
class BenchOutcome:
    """The measured result, notes for the user (baselines left out and why), and the files written."""

    result: BenchResult
    notes: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


def benchmark(options: BenchOptions, progress: ProgressFn | None = None) -> BenchOutcome:
    """Measure ``options.models`` (files or run/export directories) as ``edgecls bench`` does; write its files."""
    spins = SPIN_MODES.get(options.spin)
    if spins is None:
        raise BenchError(f"--spin takes {', '.join(SPIN_MODES)}; got {options.spin!r}")
    threads = options.threads or (collect_environment().physical_cores,)
    files = expand_models(list(options.models))
    checkpoints = run_checkpoints(files)
    targets = sorted_targets(model_targets(files))
    extra: list[BenchTarget] = []
    notes: list[str] = []
    split = None
    if options.data_dir is None and options.run_split:
        split = run_test_split(checkpoints)
    if split is not None:
        notes.append(split.note)
    if options.baselines:
        extra += opencv_baselines(targets) if options.opencv else []
        torch_rows, notes = installed_torch_baselines(
            targets, options.checkpoint, checkpoints, trust=options.trust_checkpoint
        )
        extra += torch_rows
    result = run_benchmark(
        targets, providers=options.providers, batches=options.batches, threads=threads, runs=options.runs,
        time_budget=options.time_budget, warmup=options.warmup, data_dir=options.data_dir, e2e=options.e2e,
        baselines=extra, isolate=options.isolate, progress=progress, spins=spins, strict=options.strict,
        compare=options.compare, precisions=options.precisions, max_drop=options.max_drop,
        images=split.images if split is not None else None,
    )
    if split is not None:
        result.settings["data_dir"] = str(split.source)
    outcome = BenchOutcome(result, notes)
    writers: list[tuple[Path | None, Callable[[BenchResult, Path], Path]]] = [
        (options.json_path, write_json), (options.csv_path, write_csv),
        (options.markdown_path, write_markdown), (options.plot_path, write_plot),
    ]
    for path, write in writers:
        if path is not None:
            outcome.written.append(write(result, path))
    return outcome
