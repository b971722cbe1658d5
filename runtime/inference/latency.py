"""The latency harness: warm-up, timed calls, and the statistics of their samples (milliseconds).

The one timing loop of edgecls: ``edgecls bench`` times every configuration with it, and the int8 search's
latency check (``edgecls.export.quant.grading.evaluate.latency_ms``) too, so both report the same kind of number.
A call is timed with ``time.perf_counter_ns`` around the call alone; warm-up calls are never in the samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: A time budget never stops a configuration before this many timed calls.
MIN_RUNS = 5
DEFAULT_RUNS = 100
DEFAULT_WARMUP = 10


def warm_up(call: Callable[[], Any], count: int) -> float | None:
    """Run ``call`` ``count`` times untimed for the statistics; returns the first call's ms (None if count is 0)."""
    if count < 1:
        return None
    t0 = time.perf_counter_ns()
    call()
    first_ms = (time.perf_counter_ns() - t0) / 1e6
    for _ in range(count - 1):
        call()
    return first_ms


def time_calls(call: Callable[[], Any], runs: int | None = None, time_budget: float | None = None) -> list[float]:
    """Milliseconds of each timed ``call()``: ``runs`` calls, or calls until ``time_budget`` seconds have passed
    (at least :data:`MIN_RUNS`; capped at ``runs`` when both are given; :data:`DEFAULT_RUNS` when neither is)."""
    samples: list[float] = []
    deadline = time.perf_counter() + time_budget if time_budget else None
    limit = runs if runs else (10**7 if deadline else DEFAULT_RUNS)
    while len(samples) < limit:
        t0 = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        if deadline is not None and time.perf_counter() >= deadline and len(samples) >= MIN_RUNS:
            break
    return samples


@dataclass(frozen=True)
class LatencyStats:
    """Summary of ``float64[runs]`` latency samples in ms; ``spread`` = (p90 - p50) / p50, a noise signal."""

    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    spread: float

    @classmethod
    def of(cls, samples_ms: list[float]) -> LatencyStats:
        a = np.asarray(samples_ms, dtype=np.float64)
        if a.size == 0:
            raise ValueError("no latency samples")
        p50, p90, p99 = (float(v) for v in np.percentile(a, [50, 90, 99]))
        return cls(
            runs=int(a.size), p50_ms=p50, p90_ms=p90, p99_ms=p99, mean_ms=float(a.mean()),
            std_ms=float(a.std(ddof=1)) if a.size > 1 else 0.0, min_ms=float(a.min()), max_ms=float(a.max()),
            spread=(p90 - p50) / p50 if p50 > 0 else 0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_latency(
    call: Callable[[], Any], runs: int | None = None, warmup: int = DEFAULT_WARMUP, time_budget: float | None = None
) -> tuple[LatencyStats, list[float], float | None]:
    """Warm up, then time: (statistics, every sample in ms, first call's ms)."""
    first = warm_up(call, warmup)
    samples = time_calls(call, runs, time_budget)
    return LatencyStats.of(samples), samples, first
