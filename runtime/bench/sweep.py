"""The bench's sweep: every model x provider x batch x threads x spin measured, one :class:`BenchRow` each.

What the numbers mean:

- Every configuration runs in a FRESH Python process (:mod:`edgecls.runtime.bench.child`), so the session
  creation time is a real cold start and the peak resident memory (``VmHWM`` from ``/proc/self/status``;
  ``getrusage`` ``ru_maxrss`` where there is no /proc) belongs to this configuration alone. The model file itself
  is in the OS page cache after the first configuration, so cold start means "new process", not "cold disk".
  ``isolate=False`` measures in-process instead (faster, for debugging; memory then is cumulative).
- Latency (:mod:`edgecls.runtime.inference.latency`): ``warmup`` untimed calls (the first one timed separately as
  ``first_run_ms``), then ``runs`` timed calls, or calls until ``time_budget`` seconds are spent (at least
  ``MIN_RUNS``). Latency is per call (the whole batch); throughput is ``batch * calls / total time`` in images/s.
- End-to-end mode (``data_dir`` or ``e2e``, :mod:`edgecls.runtime.bench.end_to_end`): every image through decode
  -> preprocess -> inference -> postprocess, each stage timed; top-1 accuracy when the folder has one sub-folder
  per class named like the model's labels. Without a folder, ``e2e`` uses synthetic 640x480 JPEGs.
- OpenVINO's own runtime gets one row per precision (``precisions``; by default f32, plus bf16 for float files
  where the device's ``OPTIMIZATION_CAPABILITIES`` has it), each with its agreement, so what bf16 buys and costs is two
  rows apart; the precision shown is read back from the compiled model.
- Providers actually used come from :func:`edgecls.runtime.providers.session.create_session`: a requested
  accelerator that ends up on CPU is flagged ``fallback``, never hidden.
- A configuration that fails (model cannot load, unknown/unavailable provider, a batch the model's fixed batch
  dimension cannot take, a crashed child) becomes a row carrying ``error``; the rest is measured.

Baselines (:mod:`edgecls.runtime.bench.baselines`) are :class:`BenchTarget` objects whose ``loader`` names a
function imported in the measuring process, so this module never imports torch. Ratios (``speedup``) compare each
row's p50 with the fp32 onnxruntime CPU row of the same model family, batch and threads.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence

from edgecls.runtime.accuracy_budget import DEFAULT_MAX_DROP
from edgecls.runtime.bench.agreement import family_comparisons
from edgecls.runtime.bench.auto_pick import mark_auto_picks
from edgecls.runtime.bench.child import measure_in_child
from edgecls.runtime.bench.env import collect_environment
from edgecls.runtime.bench.images import bench_images
from edgecls.runtime.bench.measure import measure
from edgecls.runtime.bench.rows import BenchError, BenchResult, BenchRow, BenchTarget, Configuration, compute_ratios
from edgecls.runtime.bench.targets import ALL_PROVIDERS, expand_providers, model_targets, provider_display
from edgecls.runtime.inference.latency import DEFAULT_RUNS, DEFAULT_WARMUP
from edgecls.runtime.providers.precision import DEFAULT_PRECISION, Precision
from edgecls.runtime.terminal.int8_notices import int8_notices
from edgecls.runtime.terminal.notice_memory import first_time

ProgressFn = Callable[[int, int, str], None]  # (configurations done, total, what runs next)


def run_benchmark(
    models: Sequence[str | os.PathLike[str] | BenchTarget],
    providers: Sequence[str] = ("cpu",),
    batches: Sequence[int] = (1,),
    threads: Sequence[int | None] = (None,),
    runs: int | None = None,
    time_budget: float | None = None,
    warmup: int = DEFAULT_WARMUP,
    data_dir: str | os.PathLike[str] | None = None,
    e2e: bool = False,
    baselines: Sequence[BenchTarget] = (),
    isolate: bool = True,
    progress: ProgressFn | None = None,
    timeout: float = 900.0,
    spins: Sequence[bool] = (False,),
    strict: bool = False,
    compare: bool = True,
    precisions: Sequence[Precision | str] | None = None,
    max_drop: float = DEFAULT_MAX_DROP,
    images: Sequence[tuple[str, str | None]] | None = None,
) -> BenchResult:
    """Measure every model x provider x batch x threads x spin (baselines: x batch x threads on their engine).

    ``runs`` timed calls per configuration (default :data:`DEFAULT_RUNS`), or calls until ``time_budget``
    seconds (capped at ``runs`` when both are given). See the module docstring for what each number means.
    ``spins``: onnxruntime thread spinning per row; the default (off) is what ``edgecls run`` uses.
    ``strict``: a provider that falls back to CPU (or runs no node) is an error row instead of a flagged one.
    ``compare``: every row's outputs against onnxruntime CPU fp32 on the same inputs (agreement, max |diff|).
    ``providers`` containing ``all`` measures every local provider and marks the fastest correct row: top-1
    agreement with onnxruntime CPU fp32 on every image within ``max_drop`` points (no pick without images);
    ``auto`` measures the provider ``--provider auto`` runs on everywhere else.
    ``precisions``: OpenVINO runtime rows per precision (None: f32, and bf16 where the device has it).
    ``images``: ``(path, class)`` items to use instead of scanning ``data_dir`` (a run's test split).
    """
    if runs is not None and runs < 1:
        raise BenchError(f"--runs must be >= 1, got {runs}")
    if time_budget is not None and time_budget <= 0:
        raise BenchError(f"--time-budget must be > 0 s, got {time_budget}")
    if warmup < 0:
        raise BenchError(f"--warmup must be >= 0, got {warmup}")
    if not batches or any(int(b) < 1 for b in batches):
        raise BenchError(f"batch sizes must be >= 1, got {list(batches)}")
    if any(t is not None and int(t) < 1 for t in threads):
        raise BenchError(f"thread counts must be >= 1, got {list(threads)}")
    env = collect_environment()
    targets = model_targets(models) + list(baselines)
    provider_list = expand_providers(providers)
    spin_list = list(dict.fromkeys(bool(x) for x in spins)) or [False]
    if runs is None and time_budget is None:
        runs = DEFAULT_RUNS
    with contextlib.ExitStack() as stack:
        if images is not None:
            images, synthetic = list(images), False
        else:
            images, synthetic = bench_images(data_dir, e2e, stack)
        comparisons = family_comparisons(targets, images, stack) if compare else {}
        ov_precisions = _openvino_precisions(provider_list, precisions)
        plan: list[Configuration] = []
        for t in targets:
            for p in provider_list if not t.is_baseline else [t.options.get("device", "cpu")]:
                outside = not t.is_baseline and _runs_outside_onnxruntime(p)
                # Spinning is onnxruntime's; baselines and OpenVINO's own runtime get one row, not a mislabelled twin.
                spin_for = spin_list[:1] if t.is_baseline or outside else spin_list
                precs: list[str | None] = [None]
                if outside:  # by default bf16 is measured on float files: int8 convolutions stay int8 anyway,
                    # and OpenVINO's bf16 mode refuses some int8 files ("No suitable implementations")
                    precs = [x.value for x in ov_precisions
                             if precisions or t.variant != "int8" or x == DEFAULT_PRECISION]
                shown = provider_display(p) if not t.is_baseline else p
                plan += [
                    Configuration(
                        t, p, shown, int(b), th, warmup, runs, time_budget, spin=sp, strict=strict, precision=pr,
                        images=images, synthetic=synthetic, comparison=comparisons.get(t.family), isolated=isolate,
                    )
                    for th in threads for sp in spin_for for pr in precs for b in batches
                ]
        rows: list[BenchRow] = []
        seen_load_errors: set[str] = set()
        for i, config in enumerate(plan):
            target = config.target
            if progress:
                progress(i, len(plan), config.describe())
            if target.load_error:  # one row says the model cannot load, not one per configuration
                if target.model not in seen_load_errors:
                    seen_load_errors.add(target.model)
                    rows.append(BenchRow.for_target(target, config.shown, None, None, error=target.load_error))
                continue
            row = measure_in_child(config, timeout) if isolate else measure(config)
            if target.contract is not None:  # verdict and target notices, once per file and user
                row.warnings += [n.line for n in int8_notices(target.contract.provenance)
                                 if first_time(target.model, n.kind)]
            if not isolate:
                row.warnings.append("measured in-process: cold start and peak RSS include earlier configs")
            rows.append(row)
        if progress:
            progress(len(plan), len(plan), "done")
    compute_ratios(rows)
    # `all` measures every provider here: the one to use is marked (auto_pick, a name the JSON keeps).
    pick = any(p.strip() == ALL_PROVIDERS for item in providers for p in item.split(","))
    picks = mark_auto_picks(rows, max_drop) if pick else []
    settings = {
        "isolated_subprocess_per_config": isolate,
        "warmup": warmup,
        "runs": runs,
        "time_budget_s": time_budget,
        "batches": [int(b) for b in batches],
        "threads": list(threads),
        "providers": provider_list,
        "ort_graph_optimization": "ORT_ENABLE_ALL",
        "ort_execution_mode": "ORT_SEQUENTIAL",
        "ort_inter_op_threads": 1,
        "ort_spinning": spin_list,
        "strict": strict,
        "compared_with_ort_cpu_fp32": compare,
        "auto_picks": picks,
        "auto_max_drop_points": max_drop if pick else None,
        "openvino_precisions": [p.value for p in ov_precisions],
        "e2e_images": len(images) if images else 0,
        "e2e_synthetic": synthetic,
        "data_dir": str(data_dir) if data_dir else None,
        "agreement_images": max((r.agreement_images or 0 for r in rows), default=0),
    }
    return BenchResult(environment=env, rows=rows, settings=settings)


def _openvino_precisions(providers: Sequence[str], asked: Sequence[Precision | str] | None) -> list[Precision]:
    """The precisions OpenVINO runtime rows are measured in: ``asked`` (library callers may pass the engines'
    spellings), or by default f32 plus bf16 where OpenVINO's CPU device lists BF16 (what bf16 buys and costs, side
    by side); [] without OpenVINO."""
    wanted = list(dict.fromkeys(Precision.parse(p) for p in asked or ()))
    if not any(_runs_outside_onnxruntime(p) for p in providers):
        if any(p != DEFAULT_PRECISION for p in wanted):
            raise BenchError(f"--precision {','.join(map(str, wanted))} is OpenVINO's setting: add --provider openvino")
        return []
    from edgecls.runtime.providers.openvino import cpu_precisions

    return wanted or [DEFAULT_PRECISION] + [p for p in cpu_precisions() if p == Precision.bf16]


def _runs_outside_onnxruntime(provider: str) -> bool:
    """``openvino`` where it runs through OpenVINO's runtime rather than onnxruntime's EP."""
    from edgecls.runtime.errors import ProviderError
    from edgecls.runtime.providers.session import openvino_route

    try:
        return provider_display(provider) == "OpenVINOExecutionProvider" and openvino_route() == "openvino"
    except ProviderError:
        return False
