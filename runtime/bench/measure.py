"""The measuring process of ``edgecls bench``: one configuration, measured in a fresh interpreter.

:func:`edgecls.runtime.bench.run_benchmark` (the parent) writes a task JSON and starts
``python -c "... bench_measure._child_main ..." TASK RESULT``; this module loads the model through the
target's loader, warms up, times the calls, runs the end-to-end stages when images are given, reads peak
memory, and writes one :class:`BenchRow` as JSON. See :mod:`edgecls.runtime.bench` for what the numbers mean.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.bench_rows import (
    BenchError,
    BenchRow,
    BenchTarget,
    LoadedRunner,
    StageTimes,
)
from edgecls.runtime.bench_targets import file_size
from edgecls.runtime.contract import ModelContract
from edgecls.runtime.errors import EdgeclsError

MIN_RUNS = 5
DEFAULT_RUNS = 100
DEFAULT_WARMUP = 10

# --------------------------------------------------------------------------------------------------------
# The onnxruntime loader (baseline loaders live in bench_opencv.py and edgecls/training/torch_baseline.py)
# --------------------------------------------------------------------------------------------------------
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
}


def load_onnxruntime(
    model: str, provider: str = "cpu", threads: int | None = None, **options: Any
) -> LoadedRunner:
    """A session through :func:`create_session` (the one place sessions are made), configured as ``edgecls run``
    configures it unless the task says otherwise: no thread spinning (``spin``), ``strict`` when asked.

    ``openvino`` may come back as OpenVINO's own runtime (same session calls); ``providers_used`` says so.
    """
    from edgecls.runtime.contract import contract_from_metadata
    from edgecls.runtime.session import create_session

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the fallback warning is reported in the row instead
        sess, info = create_session(
            model, provider=provider, threads=threads, provider_options=options.get("provider_options"),
            strict=bool(options.get("strict", False)), spin=bool(options.get("spin", False)),
        )
    inp = sess.get_inputs()[0]
    out_name = sess.get_outputs()[0].name
    feed_name = inp.name

    def infer(batch: np.ndarray) -> np.ndarray:
        return sess.run([out_name], {feed_name: batch})[0]

    return LoadedRunner(
        infer=infer,
        input_shape=tuple(inp.shape),
        input_dtype=_ORT_DTYPES.get(inp.type, "float32"),
        providers_used=info.used,
        fallback=info.fallback,
        node_placement=info.node_placement,
        warnings=list(info.warnings),
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
        spin=bool(task.get("spin", False)),
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
        # Session settings of the task (spin, strict) reach every loader; baselines ignore what they cannot use.
        session = {"spin": task.get("spin", False), "strict": task.get("strict", False)}
        runner = loader(target.model, task["provider"], task["threads"], **{**target.options, **session})
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
        if task.get("comparison"):
            from edgecls.runtime.bench_agreement import compare

            agreement, row.agreement_inputs = compare(
                runner.infer, task["comparison"], task["batch"], runner.input_dtype
            )
            row.agreement, row.max_abs_diff = agreement.agreement, agreement.max_abs_diff
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


def _child_main(argv: list[str]) -> int:
    """``TASK.json RESULT.json``: measure one configuration (the entry point of the measuring process)."""
    if len(argv) != 2:
        print("usage: python -m edgecls.runtime.bench_measure TASK.json RESULT.json", file=sys.stderr)
        return 2
    task = json.loads(Path(argv[0]).read_text())
    result = measure(task)
    atomic_write_text(argv[1], json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))

