"""Benchmarks: latency, throughput, cold start and peak memory per model x provider x batch x threads.

How a configuration is measured (one :class:`BenchRow` each):

- Every configuration runs in a FRESH Python subprocess (``python -m edgecls.runtime.bench TASK RESULT``).
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
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from edgecls.runtime.atomic import atomic_write_bytes, atomic_write_text
from edgecls.runtime.bench_env import collect_environment
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
from edgecls.runtime.contract import ModelContract
from edgecls.runtime.errors import EdgeclsError

# The data model and target discovery live in bench_rows / bench_targets; importers use this module's names.
__all__ = [
    "CPU_PROVIDER", "DEFAULT_RUNS", "DEFAULT_WARMUP", "ENGINE_OPENCV", "ENGINE_ORT", "ENGINE_TORCH", "MIN_RUNS",
    "NON_COMPUTE_PROVIDERS", "ORT_LOADER", "BenchError", "BenchResult", "BenchRow", "BenchTarget", "LoadedRunner",
    "StageTimes", "compute_ratios", "expand_providers", "family_of", "file_size", "inspect_model", "is_reference",
    "load_onnxruntime", "measure", "model_targets", "reference_row", "run_benchmark", "scan_images",
    "synthetic_images", "variant_of",
]

MIN_RUNS = 5
DEFAULT_RUNS = 100
DEFAULT_WARMUP = 10

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
# The onnxruntime loader (baseline loaders live in bench_opencv.py and edgecls/training/torch_baseline.py)
# --------------------------------------------------------------------------------------------------------
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
}


def _node_placement(sess: Any) -> dict[str, int] | None:
    # Works when the session was created with session.record_ep_graph_assignment_info=1 (recent ORT);
    # otherwise onnxruntime refuses and placement stays unknown.
    try:
        assigned = sess.get_provider_graph_assignment_info()
    except Exception:  # noqa: BLE001 - absent API or option not enabled: placement is simply unknown
        return None
    counts: dict[str, int] = {}
    for sub in assigned:
        counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.get_nodes())
    return counts


def load_onnxruntime(
    model: str, provider: str = "cpu", threads: int | None = None, **options: Any
) -> LoadedRunner:
    """An onnxruntime session through :func:`create_session` (the one place sessions are made)."""
    from edgecls.runtime.contract import contract_from_metadata
    from edgecls.runtime.session import create_session

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the fallback warning is reported in the row instead
        sess, info = create_session(
            model, provider=provider, threads=threads, provider_options=options.get("provider_options")
        )
    inp = sess.get_inputs()[0]
    out_name = sess.get_outputs()[0].name
    feed_name = inp.name

    def infer(batch: np.ndarray) -> np.ndarray:
        return sess.run([out_name], {feed_name: batch})[0]

    placement = _node_placement(sess)
    fallback = info.fallback
    warns = list(info.warnings)
    requested = info.requested[0]
    if placement and requested != CPU_PROVIDER and placement.get(requested, 0) == 0 and not fallback:
        fallback = True  # listed by get_providers() but runs no node: still a silent fallback
        warns.append(f"{requested} is listed by the session but runs no node; everything runs on CPU")
    return LoadedRunner(
        infer=infer,
        input_shape=tuple(inp.shape),
        input_dtype=_ORT_DTYPES.get(inp.type, "float32"),
        providers_used=info.used,
        fallback=fallback,
        node_placement=placement,
        warnings=warns,
        contract=contract_from_metadata(sess.get_modelmeta().custom_metadata_map),
        size_bytes=file_size(model),
    )


# --------------------------------------------------------------------------------------------------------
# Measuring one configuration (runs in the child process)
# --------------------------------------------------------------------------------------------------------
def _memory_mb() -> tuple[float | None, float | None]:
    """(current RSS, peak RSS) of this process in MiB."""
    try:
        status = Path("/proc/self/status").read_text()
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        hwm = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        if rss and hwm:
            return int(rss.group(1)) / 1024.0, int(hwm.group(1)) / 1024.0
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mb = peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0  # bytes vs KiB
        return None, peak_mb
    except (ImportError, OSError):
        return None, None


def _import_loader(spec: str) -> Callable[..., LoadedRunner]:
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise BenchError(f"benchmark loader {spec!r} is not importable ({e})") from e


def _input_array(runner: LoadedRunner, batch: int, contract: ModelContract | None) -> np.ndarray:
    """``[batch, 3, h, w]`` noise; dynamic dims from the contract; a fixed batch that differs is an error."""
    shape = list(runner.input_shape)
    if len(shape) != 4:
        raise BenchError(f"model input has shape {shape}; expected [N, 3, H, W]")
    if isinstance(shape[0], int) and shape[0] > 0 and shape[0] != batch:
        raise BenchError(f"model has a fixed batch size of {shape[0]}; cannot run batch {batch}")
    dims = [batch, shape[1]]
    for i, d in enumerate(shape[2:]):
        if isinstance(d, int) and d > 0:
            dims.append(d)
        elif contract is not None:
            dims.append(contract.input_size[i])
        else:
            raise BenchError(f"model input has dynamic spatial size {shape}; it needs an edgecls contract")
    if not isinstance(dims[1], int) or dims[1] <= 0:
        dims[1] = 3
    rng = np.random.default_rng(0)
    return rng.standard_normal(dims).astype(runner.input_dtype)


def _timed_loop(
    infer: Callable[[np.ndarray], Any], x: np.ndarray, runs: int | None, time_budget: float | None
) -> list[float]:
    samples: list[float] = []
    deadline = time.perf_counter() + time_budget if time_budget else None
    limit = runs if runs else (10**7 if deadline else DEFAULT_RUNS)
    while len(samples) < limit:
        t0 = time.perf_counter_ns()
        infer(x)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        if deadline is not None and time.perf_counter() >= deadline and len(samples) >= MIN_RUNS:
            break
    return samples


def _softmax_top1(logits: np.ndarray, output_kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``float[N, C]`` -> (class index[N], probability[N]); what a classifier does after inference."""
    logits = np.asarray(logits, dtype=np.float32)
    if output_kind == "probabilities":
        probs = logits
    else:
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = z / z.sum(axis=1, keepdims=True)
    idx = probs.argmax(axis=1)
    return idx, probs[np.arange(len(idx)), idx]


def _end_to_end(
    runner: LoadedRunner,
    contract: ModelContract,
    images: list[tuple[str, str | None]],
    batch: int,
    synthetic: bool,
) -> tuple[StageTimes, float | None, int | None, list[str]]:
    """One pass over ``images`` in batches: per-stage means per image, and top-1 accuracy if labelled."""
    from edgecls.runtime.decode import decode_image
    from edgecls.runtime.errors import ImageDecodeError
    from edgecls.runtime.preprocess import decode_floor, preprocess_batch

    notes: list[str] = []
    fixed = (
        runner.input_shape[0]
        if isinstance(runner.input_shape[0], int) and runner.input_shape[0] > 0
        else None
    )
    label_index = {name: i for i, name in enumerate(contract.labels)}
    floor = decode_floor(contract)  # large JPEGs decode at reduced scale, as in `edgecls run`
    t_dec = t_pre = t_inf = t_post = 0.0
    done = errors = correct = scored = 0
    unknown: set[str] = set()
    wall0 = time.perf_counter()
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        t0 = time.perf_counter()
        decoded, labels = [], []
        for path, cls in chunk:
            try:
                decoded.append(decode_image(path, floor))
                labels.append(cls)
            except ImageDecodeError:
                errors += 1
        t1 = time.perf_counter()
        if not decoded:
            t_dec += t1 - t0
            continue
        x = preprocess_batch(decoded, contract).astype(runner.input_dtype, copy=False)
        n = len(decoded)
        if (
            fixed is not None and n < fixed
        ):  # a fixed-batch model needs a full batch: pad, score the real ones
            x = np.concatenate([x, np.repeat(x[-1:], fixed - n, axis=0)])
        t2 = time.perf_counter()
        out = runner.infer(x)
        t3 = time.perf_counter()
        idx, _ = _softmax_top1(out[:n], contract.output_kind)
        t4 = time.perf_counter()
        t_dec, t_pre, t_inf, t_post = t_dec + t1 - t0, t_pre + t2 - t1, t_inf + t3 - t2, t_post + t4 - t3
        done += n
        for pred, cls in zip(idx, labels, strict=True):
            if cls is None:
                continue
            if cls not in label_index:
                unknown.add(cls)
                continue
            scored += 1
            correct += int(pred == label_index[cls])
    wall = time.perf_counter() - wall0
    per = 1000.0 / max(done, 1)
    stages = StageTimes(
        images=done,
        decode_ms=t_dec * per,
        preprocess_ms=t_pre * per,
        infer_ms=t_inf * per,
        postprocess_ms=t_post * per,
        total_ms=wall * per,
        images_per_s=done / wall if wall else 0.0,
        decode_errors=errors,
        synthetic=synthetic,
    )
    if errors:
        notes.append(f"{errors} image(s) could not be decoded and were skipped")
    if unknown:
        notes.append(
            f"class folder(s) not among the model's labels, not scored: {', '.join(sorted(unknown))}"
        )
    accuracy = correct / scored if scored else None
    return stages, accuracy, (scored or None), notes


def measure(task: dict[str, Any]) -> dict[str, Any]:
    """Measure one configuration in this process; returns a :class:`BenchRow` as a dict (never raises)."""
    target = BenchTarget(**task["target"])
    row = BenchRow(
        label=target.label,
        model=target.model,
        engine=target.engine,
        variant=target.variant,
        family=target.family,
        provider=task["provider_display"],
        batch=task["batch"],
        threads=task["threads"],
        warmup=task["warmup"],
        isolated=task.get("isolated", True),
    )
    row.model_size_mb = target.size_bytes / 2**20 if target.size_bytes else None
    try:
        t0 = time.perf_counter()
        for module in target.imports:  # the engine's own import is not part of creating a session
            importlib.import_module(module)
        loader = _import_loader(target.loader)
        row.import_ms = (time.perf_counter() - t0) * 1000.0
        row.rss_before_load_mb, _ = _memory_mb()
        t0 = time.perf_counter()
        runner = loader(target.model, task["provider"], task["threads"], **target.options)
        row.session_create_ms = (time.perf_counter() - t0) * 1000.0
        row.providers_used, row.fallback = list(runner.providers_used), runner.fallback
        row.node_placement = runner.node_placement
        row.warnings += runner.warnings
        if runner.size_bytes:
            row.model_size_mb = runner.size_bytes / 2**20
        contract = runner.contract or target.contract
        x = _input_array(runner, task["batch"], contract)
        t0 = time.perf_counter()
        runner.infer(x)
        row.first_run_ms = (time.perf_counter() - t0) * 1000.0
        for _ in range(max(0, task["warmup"] - 1)):
            runner.infer(x)
        samples = _timed_loop(runner.infer, x, task.get("runs"), task.get("time_budget"))
        _fill_stats(row, samples, task["batch"])
        images = task.get("images")
        if images:
            if contract is None:
                row.warnings.append(
                    "no edgecls contract in the model: end-to-end stages need its preprocessing"
                )
            else:
                row.e2e, row.accuracy, row.accuracy_images, notes = _end_to_end(
                    runner, contract, [tuple(i) for i in images], task["batch"], task.get("synthetic", False)
                )
                row.warnings += notes
    except EdgeclsError as e:
        row.error = str(e)
    except Exception as e:  # noqa: BLE001 - engines raise private types; the row must carry it, not crash
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        row.error = f"{type(e).__name__}: {msg}"[:500]
    _, row.peak_rss_mb = _memory_mb()
    return row.to_dict()


def _fill_stats(row: BenchRow, samples: list[float], batch: int) -> None:
    a = np.asarray(samples, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    row.runs = len(samples)
    row.p50_ms, row.p90_ms, row.p99_ms = float(p50), float(p90), float(p99)
    row.mean_ms, row.min_ms, row.max_ms = float(a.mean()), float(a.min()), float(a.max())
    row.std_ms = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    row.throughput_ips = batch * len(a) / (a.sum() / 1000.0) if a.sum() > 0 else None
    row.samples_ms = [round(float(s), 4) for s in a]


# --------------------------------------------------------------------------------------------------------
# The driver (parent process)
# --------------------------------------------------------------------------------------------------------
ProgressFn = Callable[[int, int, str], None]  # (configurations done, total, what runs next)


# Imported (not run as __main__) so loaders naming this module share its classes with the measuring code.
_CHILD_CODE = "import sys; from edgecls.runtime.bench import _child_main; sys.exit(_child_main(sys.argv[1:]))"


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
) -> BenchResult:
    """Measure every model x provider x batch x threads (baselines: x batch x threads on their engine).

    ``runs`` timed calls per configuration (default :data:`DEFAULT_RUNS`), or calls until ``time_budget``
    seconds (capped at ``runs`` when both are given). See the module docstring for what each number means.
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
    if runs is None and time_budget is None:
        runs = DEFAULT_RUNS
    with contextlib.ExitStack() as stack:
        images, synthetic = _e2e_images(data_dir, e2e, stack)
        plan: list[tuple[BenchTarget, str, int, int | None]] = []
        for t in targets:
            provs = provider_list if not t.is_baseline else [t.options.get("device", "cpu")]
            plan += [(t, p, int(b), th) for p in provs for th in threads for b in batches]
        rows: list[BenchRow] = []
        seen_load_errors: set[str] = set()
        for i, (target, provider, batch, th) in enumerate(plan):
            shown = provider_display(provider) if not target.is_baseline else provider
            if progress:
                progress(i, len(plan), f"{target.label} {shown} b{batch} t{th or 'default'}")
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
            }
            result = _run_isolated(task, timeout) if isolate else measure(task)
            if "label" not in result:  # the child died before it could report: keep the row, with the reason
                rows.append(_error_row(target, shown, batch, th, result["error"]))
            else:
                row = BenchRow.from_dict(result)
                if not isolate:
                    row.warnings.append(
                        "measured in-process: cold start and peak RSS include earlier configs"
                    )
                rows.append(row)
        if progress:
            progress(len(plan), len(plan), "done")
    compute_ratios(rows)
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
        "ort_spinning": True,
        "e2e_images": len(images) if images else 0,
        "e2e_synthetic": synthetic,
        "data_dir": str(data_dir) if data_dir else None,
    }
    return BenchResult(environment=env, rows=rows, settings=env.bench_settings)


def _e2e_images(
    data_dir: str | os.PathLike[str] | None, e2e: bool, stack: contextlib.ExitStack
) -> tuple[list[tuple[str, str | None]] | None, bool]:
    if data_dir is not None:
        return scan_images(data_dir), False
    if e2e:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="edgecls-bench-images-"))
        return synthetic_images(tmp), True
    return None, False


def _child_main(argv: list[str]) -> int:
    """``TASK.json RESULT.json``: measure one configuration (the entry point of the measuring process)."""
    if len(argv) != 2:
        print("usage: python -m edgecls.runtime.bench TASK.json RESULT.json", file=sys.stderr)
        return 2
    task = json.loads(Path(argv[0]).read_text())
    result = measure(task)
    atomic_write_text(argv[1], json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
