"""Measuring one configuration: load through the target's loader, warm up, time, compare, run end to end.

Runs in the bench's child process (:mod:`edgecls.runtime.bench.child`), or in-process with ``isolate=False``.
The timing loop is :mod:`edgecls.runtime.inference.latency`; the end-to-end pass
:mod:`edgecls.runtime.bench.end_to_end`; the agreement check :mod:`edgecls.runtime.bench.agreement`.
Input: ``float32[batch, 3, h, w]`` standard-normal noise (``float16`` for fp16-input models), created once.
"""

from __future__ import annotations

import importlib
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.bench.end_to_end import end_to_end
from edgecls.runtime.bench.rows import BenchError, BenchRow, Configuration, LoadedRunner
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.inference.batched_inference import fixed_batch_of
from edgecls.runtime.inference.latency import LatencyStats, time_calls, warm_up
from edgecls.runtime.providers.engine_errors import short_engine_message


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


def input_array(runner: LoadedRunner, batch: int, contract: ModelContract | None) -> np.ndarray:
    """``[batch, 3, h, w]`` noise; dynamic dims from the contract; a fixed batch that differs is an error."""
    shape = list(runner.input_shape)
    if len(shape) != 4:
        raise BenchError(f"model input has shape {shape}; expected [N, 3, H, W]")
    fixed = fixed_batch_of(shape)
    if fixed is not None and fixed != batch:
        raise BenchError(f"model has a fixed batch size of {fixed}; cannot run batch {batch}")
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


def measure(config: Configuration) -> BenchRow:
    """Measure one configuration in this process (never raises: a failure is the row's ``error``)."""
    target = config.target
    row = config.blank_row()
    try:
        t0 = time.perf_counter()
        for module in target.imports:  # the engine's own import is not part of creating a session
            importlib.import_module(module)
        loader = _import_loader(target.loader)
        row.import_ms = (time.perf_counter() - t0) * 1000.0
        row.rss_before_load_mb, _ = _memory_mb()
        t0 = time.perf_counter()
        # Session settings (spin, strict) reach every loader; baselines ignore what they cannot use.
        session: dict[str, Any] = {"spin": config.spin, "strict": config.strict,
                                   "precision": config.precision}  # OpenVINO's --precision (None: f32)
        runner = loader(target.model, config.provider, config.threads, **{**target.options, **session})
        row.session_create_ms = (time.perf_counter() - t0) * 1000.0
        row.providers_used, row.fallback = list(runner.providers_used), runner.fallback
        row.precision = runner.precision or row.precision  # what the compiled model really runs in
        row.node_placement = runner.node_placement
        row.warnings += runner.warnings
        if runner.size_bytes:
            row.model_size_mb = runner.size_bytes / 2**20
        contract = runner.contract or target.contract
        x = input_array(runner, config.batch, contract)
        # The first call is timed on its own (``first_run_ms``) and counts as one of the warm-up calls.
        row.first_run_ms = warm_up(lambda: runner.infer(x), max(1, config.warmup))
        samples = time_calls(lambda: runner.infer(x), config.runs, config.time_budget)
        _fill_stats(row, samples, config.batch)
        if config.comparison:
            from edgecls.runtime.bench.agreement import compare

            agreement, row.agreement_inputs = compare(
                runner.infer, config.comparison, config.batch, runner.input_dtype, target.model, contract
            )
            row.agreement, row.max_abs_diff = agreement.agreement, agreement.max_abs_diff
            row.agreement_images = agreement.images
        if config.images:
            if contract is None:
                row.warnings.append("no edgecls contract in the model: end-to-end stages need its preprocessing")
            else:
                row.e2e, row.accuracy, row.accuracy_images, notes = end_to_end(
                    runner, contract, config.images, config.batch, config.synthetic
                )
                row.warnings += notes
    except EdgeclsError as e:
        row.error = str(e)
    except Exception as e:  # noqa: BLE001 - engines raise private types; the row must carry it, not crash
        row.error = f"{type(e).__name__}: {short_engine_message(e)}"
    _, row.peak_rss_mb = _memory_mb()
    return row


def _fill_stats(row: BenchRow, samples: list[float], batch: int) -> None:
    stats = LatencyStats.of(samples)
    row.runs = stats.runs
    row.p50_ms, row.p90_ms, row.p99_ms = stats.p50_ms, stats.p90_ms, stats.p99_ms
    row.mean_ms, row.std_ms, row.min_ms, row.max_ms = stats.mean_ms, stats.std_ms, stats.min_ms, stats.max_ms
    total_s = sum(samples) / 1000.0
    row.throughput_ips = batch * len(samples) / total_s if total_s > 0 else None
    row.samples_ms = [round(float(s), 4) for s in samples]
