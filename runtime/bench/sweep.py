"""Benchmarks: latency, throughput, cold start and peak memory per model x provider x batch x threads.

How a configuration is measured (one :class:`BenchRow` each):

- Every configuration runs in a FRESH Python subprocess (:mod:`edgecls.runtime.bench_measure`).
  That is what makes two numbers honest: the session creation time is a real cold start (first session in
  the process, thread pools and allocators created from scratch), and the peak resident memory
  (``VmHWM`` from ``/proc/self/status``; ``getrusage`` ``ru_maxrss`` where there is no /proc) belongs to
  this configuration alone, not to everything measured before it. The model file itself is in the OS page
  cache after the first configuration, so cold start means "new process", not "cold disk".
  ``isolate=False`` measures in-process instead (faster, for debugging; memory then is cumulative).
- Input: ``float32[batch, 3, h, w]`` standard-normal noise (``float16`` for fp16-input models), created once.
- ``warmup`` runs (the first one timed separately as ``first_run_ms``) are excluded; then ``runs`` timed
  calls, or calls until ``time_budget`` seconds are spent (at least :data:`MIN_RUNS`). Latency is per call
  (the whole batch); throughput is ``batch * calls / total time`` in images/s.
- End-to-end mode (``data_dir`` or ``e2e``): every image of the folder goes through decode ->
  preprocess (the runtime's own ``preprocess_batch``) -> inference -> postprocess (softmax, top-1), each
  stage timed; top-1 accuracy when the folder has one sub-folder per class named like the model's labels.
  Without a folder, ``e2e`` uses synthetic 640x480 JPEGs (timings only).
- Providers actually used come from :func:`edgecls.runtime.session.create_session`: a requested
  accelerator that ends up on CPU is flagged ``fallback``, never hidden.
- A configuration that fails (model cannot load, unknown/unavailable provider, a batch the model's fixed
  batch dimension cannot take, a crashed subprocess) becomes a row carrying ``error``; the rest is measured.

Baselines (OpenCV DNN, PyTorch eager) are :class:`BenchTarget` objects whose ``loader`` names a function
imported in the child process, so this module never imports torch. Ratios (``speedup``) compare each row's
p50 with the fp32 onnxruntime CPU row of the same model family, batch and threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.atomic import atomic_write_bytes
from edgecls.runtime.bench_env import collect_environment
from edgecls.runtime.bench_measure import DEFAULT_RUNS, DEFAULT_WARMUP, MIN_RUNS, load_onnxruntime, measure
from edgecls.runtime.bench_rows import (
    CPU_PROVIDER,
    ENGINE_OPENCV,
    ENGINE_ORT,
    ENGINE_TORCH,
    ORT_LOADER,
    BenchError,
    BenchResult,
    BenchRow,
    BenchTarget,
    LoadedRunner,
    StageTimes,
    compute_ratios,
    is_reference,
    reference_row,
)
from edgecls.runtime.bench_targets import (
    NON_COMPUTE_PROVIDERS,
    expand_providers,
    family_of,
    file_size,
    inspect_model,
    model_targets,
    provider_display,
    variant_of,
)
from edgecls.runtime.cpu_isa import int8_warnings

# The data model, target discovery and the measuring process live in bench_rows / bench_targets /
# bench_measure; importers use this module's names.
__all__ = [
    "CPU_PROVIDER", "DEFAULT_RUNS", "DEFAULT_WARMUP", "ENGINE_OPENCV", "ENGINE_ORT", "ENGINE_TORCH", "MIN_RUNS",
    "NON_COMPUTE_PROVIDERS", "ORT_LOADER", "BenchError", "BenchResult", "BenchRow", "BenchTarget", "LoadedRunner",
    "StageTimes", "compute_ratios", "expand_providers", "family_of", "file_size", "inspect_model", "is_reference",
    "load_onnxruntime", "measure", "model_targets", "reference_row", "run_benchmark", "scan_images",
    "synthetic_images", "variant_of",
]


# --------------------------------------------------------------------------------------------------------
# Images for end-to-end mode
# --------------------------------------------------------------------------------------------------------
def scan_images(data_dir: str | os.PathLike[str]) -> list[tuple[str, str | None]]:
    """``(path, class name or None)`` for the images of a folder; class = first-level sub-folder name.

    Images directly in ``data_dir`` are unlabelled. A tree split into ``train/ val/ test/`` means its
    held-out ``test/`` part. Sorted, so every variant sees the same order.
    """
    from edgecls.runtime.decode import is_image_path

    root = Path(data_dir)
    if not root.is_dir():
        raise BenchError(f"{root}: no such data folder")
    if (root / "test").is_dir() and (root / "train").is_dir():
        root = root / "test"
    items: list[tuple[str, str | None]] = []
    for p in sorted(root.rglob("*")):
        if (
            p.is_file()
            and is_image_path(p)
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        ):
            rel = p.relative_to(root).parts
            items.append((str(p), rel[0] if len(rel) > 1 else None))
    if not items:
        raise BenchError(f"{root}: no images found")
    return items


def synthetic_images(
    out_dir: str | os.PathLike[str], count: int = 32, size: tuple[int, int] = (480, 640), seed: int = 0
) -> list[tuple[str, str | None]]:
    """Write ``count`` camera-sized JPEGs (smooth gradients + noise) for e2e timing without a data folder."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items: list[tuple[str, str | None]] = []
    for i in range(count):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        base = np.stack([xx / w * 255 * a, yy / h * 255 * b, (xx + yy) / (h + w) * 255 * c], axis=-1)
        img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = out / f"synthetic_{i:03d}.jpg"
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise BenchError("OpenCV could not encode a synthetic JPEG")
        atomic_write_bytes(path, buf.tobytes())
        items.append((str(path), None))
    return items


# --------------------------------------------------------------------------------------------------------
# The driver (parent process)
# --------------------------------------------------------------------------------------------------------
ProgressFn = Callable[[int, int, str], None]  # (configurations done, total, what runs next)


# Imported (not run as __main__) so loaders naming this module share its classes with the measuring code.
_CHILD_CODE = (
    "import sys; from edgecls.runtime.bench_measure import _child_main; sys.exit(_child_main(sys.argv[1:]))"
)


def _run_isolated(task: dict[str, Any], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgecls-bench-") as tmp:
        task_path, result_path = Path(tmp) / "task.json", Path(tmp) / "row.json"
        task_path.write_text(json.dumps(task))
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _CHILD_CODE, str(task_path), str(result_path)],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"measurement did not finish within {timeout:.0f} s"}
        if result_path.is_file():
            with contextlib.suppress(json.JSONDecodeError):
                return json.loads(result_path.read_text())
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()
        why = tail[-1] if tail else f"exit status {proc.returncode}"
        return {"error": f"measuring process died (exit {proc.returncode}): {why}"[:500]}


def _error_row(
    target: BenchTarget, provider: str, batch: int | None, threads: int | None, error: str
) -> BenchRow:
    return BenchRow(
        label=target.label,
        model=target.model,
        engine=target.engine,
        variant=target.variant,
        family=target.family,
        provider=provider,
        batch=batch,
        threads=threads,
        error=error,
        model_size_mb=target.size_bytes / 2**20 if target.size_bytes else None,
    )


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
) -> BenchResult:
    """Measure every model x provider x batch x threads x spin (baselines: x batch x threads on their engine).

    ``runs`` timed calls per configuration (default :data:`DEFAULT_RUNS`), or calls until ``time_budget``
    seconds (capped at ``runs`` when both are given). See the module docstring for what each number means.
    ``spins``: onnxruntime thread spinning per row; the default (off) is what ``edgecls run`` uses.
    ``strict``: a provider that falls back to CPU (or runs no node) is an error row instead of a flagged one.
    ``compare``: every row's outputs against onnxruntime CPU fp32 on the same inputs (agreement, max |diff|).
    ``providers`` containing ``auto`` measures every local provider and marks the fastest correct row.
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
        images, synthetic = _e2e_images(data_dir, e2e, stack)
        comparisons = _comparisons(targets, images, stack) if compare else {}
        plan: list[tuple[BenchTarget, str, int, int | None, bool]] = []
        for t in targets:
            provs = provider_list if not t.is_baseline else [t.options.get("device", "cpu")]
            for p in provs:
                # Spinning is onnxruntime's; baselines and OpenVINO's own runtime get one row, not a mislabelled twin.
                spin_for = spin_list[:1] if t.is_baseline or _runs_outside_onnxruntime(p) else spin_list
                plan += [(t, p, int(b), th, sp) for th in threads for sp in spin_for for b in batches]
        rows: list[BenchRow] = []
        seen_load_errors: set[str] = set()
        for i, (target, provider, batch, th, spin) in enumerate(plan):
            shown = provider_display(provider) if not target.is_baseline else provider
            if progress:
                progress(i, len(plan), f"{target.label} {shown} b{batch} t{th or 'default'}{' spin' * spin}")
            if target.load_error:
                if (
                    target.model not in seen_load_errors
                ):  # one row says the model cannot load, not one per config
                    seen_load_errors.add(target.model)
                    rows.append(_error_row(target, shown, None, None, target.load_error))
                continue
            task = {
                "target": dataclasses.asdict(target),
                "provider": provider,
                "provider_display": shown,
                "batch": batch,
                "threads": th,
                "warmup": warmup,
                "runs": runs,
                "time_budget": time_budget,
                "images": images,
                "synthetic": synthetic,
                "isolated": isolate,
                "spin": spin,
                "strict": strict,
                "comparison": comparisons.get(target.family),
            }
            result = _run_isolated(task, timeout) if isolate else measure(task)
            if "label" not in result:  # the child died before it could report: keep the row, with the reason
                rows.append(_error_row(target, shown, batch, th, result["error"]))
                rows[-1].spin = spin
            else:
                row = BenchRow.from_dict(result)
                if target.contract is not None:  # over-budget mark, int8 products that saturate on this CPU
                    row.warnings += int8_warnings(target.contract.provenance)
                if not isolate:
                    row.warnings.append(
                        "measured in-process: cold start and peak RSS include earlier configs"
                    )
                rows.append(row)
        if progress:
            progress(len(plan), len(plan), "done")
    compute_ratios(rows)
    picks = mark_auto_picks(rows) if any(p.strip() == "auto" for item in providers for p in item.split(",")) else []
    env.bench_settings = {
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
        "e2e_images": len(images) if images else 0,
        "e2e_synthetic": synthetic,
        "data_dir": str(data_dir) if data_dir else None,
    }
    return BenchResult(environment=env, rows=rows, settings=env.bench_settings)


def _runs_outside_onnxruntime(provider: str) -> bool:
    """``openvino`` where it runs through OpenVINO's runtime rather than onnxruntime's EP."""
    from edgecls.runtime.errors import ProviderError
    from edgecls.runtime.session import openvino_route

    try:
        return provider_display(provider) == "OpenVINOExecutionProvider" and openvino_route() == "openvino"
    except ProviderError:
        return False


def _comparisons(
    targets: Sequence[BenchTarget], images: list[tuple[str, str | None]] | None, stack: contextlib.ExitStack
) -> dict[str, str]:
    """family -> ``.npz`` of comparison inputs and the family's fp32 onnxruntime CPU outputs (see bench_agreement)."""
    from edgecls.runtime.bench_agreement import comparison_inputs, reference_outputs, write_comparison

    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="edgecls-bench-compare-")))
    out: dict[str, str] = {}
    for t in targets:
        if t.is_baseline or t.load_error or t.variant != "fp32" or t.family in out:
            continue
        made = comparison_inputs(t.contract, None, images)
        if made is None:  # a foreign model without a contract: its input size is unknown here
            continue
        x, what = made
        try:
            ref = reference_outputs(t, x)
        except Exception:  # noqa: BLE001 - the fp32 row itself will carry the error
            continue
        out[t.family] = str(write_comparison(tmp / f"family_{len(out)}.npz", x, ref, what))
    return out


#: A provider is "correct" for ``auto`` when its top-1 agreement with onnxruntime CPU fp32 is within this many
#: points of onnxruntime CPU's own agreement on the same model file (int8 files disagree a little with fp32
#: on every engine; a provider must not disagree more than onnxruntime CPU does).
AUTO_AGREEMENT_SLACK = 0.01


def mark_auto_picks(rows: Sequence[BenchRow]) -> list[dict[str, Any]]:
    """For each model file x batch x threads x spin: the fastest correct provider (``BenchRow.auto_pick``)."""
    groups: dict[tuple[str, int | None, int | None, bool], list[BenchRow]] = {}
    for r in rows:
        if r.engine == ENGINE_ORT and r.ok and r.p50_ms is not None:
            groups.setdefault((r.model, r.batch, r.threads, r.spin), []).append(r)
    picks: list[dict[str, Any]] = []
    for (model, batch, th, spin), group in groups.items():
        cpu = next((r for r in group if r.provider == CPU_PROVIDER), None)
        base = cpu.agreement if cpu is not None else None

        def correct(r: BenchRow, base: float | None = base) -> bool:
            if r.fallback:
                return False  # not the provider it claims to be
            if base is None or r.agreement is None:
                return r.provider == CPU_PROVIDER  # unverifiable rows are never picked over the reference
            return r.agreement >= base - AUTO_AGREEMENT_SLACK

        ok = [r for r in group if correct(r)]
        if not ok:
            continue
        best = min(ok, key=lambda r: r.p50_ms or float("inf"))
        best.auto_pick = True
        picks.append({
            "model": model, "label": best.label, "batch": batch, "threads": th, "spin": spin, "provider": best.provider,
            "providers_used": best.providers_used, "p50_ms": best.p50_ms, "agreement": best.agreement,
            "rejected": [r.provider for r in group if r not in ok],
        })
    return picks


def _e2e_images(
    data_dir: str | os.PathLike[str] | None, e2e: bool, stack: contextlib.ExitStack
) -> tuple[list[tuple[str, str | None]] | None, bool]:
    if data_dir is not None:
        return scan_images(data_dir), False
    if e2e:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="edgecls-bench-images-"))
        return synthetic_images(tmp), True
    return None, False
