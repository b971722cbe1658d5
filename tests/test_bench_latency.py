"""The one latency harness (runtime/inference/latency.py) and the one batched-inference loop (batched_inference.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgecls.runtime.inference.batched_inference import infer_in_batches
from edgecls.runtime.inference.latency import MIN_RUNS, LatencyStats, measure_latency, time_calls


def test_warm_up_calls_are_not_in_the_samples_and_the_first_call_is_timed_alone():
    calls: list[float] = []

    def call() -> None:
        calls.append(0.3 if not calls else 0.0)  # only the first (cold) call is slow
        time.sleep(calls[-1])

    stats, samples, first = measure_latency(call, runs=7, warmup=3)
    assert len(calls) == 3 + 7 and len(samples) == stats.runs == 7
    assert first is not None and first >= 300.0  # the cold call, in ms (a sleep is never shorter: load-proof)
    # ... and it is not among the timed ones: each of them is an empty call, which even a loaded box does not
    # stretch to the cold call's 300 ms (the margin was 20 ms, within one scheduler slice of a busy 2-core box)
    assert max(samples) < 300.0


def test_a_time_budget_still_takes_the_minimum_number_of_runs():
    assert len(time_calls(lambda: None, time_budget=1e-9)) == MIN_RUNS
    assert len(time_calls(lambda: None, runs=3, time_budget=60.0)) == 3  # runs caps the budget


def test_statistics_of_known_samples():
    stats = LatencyStats.of([float(v) for v in range(1, 11)])
    assert (stats.p50_ms, stats.min_ms, stats.max_ms, stats.mean_ms) == (5.5, 1.0, 10.0, 5.5)
    assert stats.p90_ms == pytest.approx(9.1) and stats.spread == pytest.approx((9.1 - 5.5) / 5.5)
    assert stats.std_ms == pytest.approx(np.std(np.arange(1, 11), ddof=1))


def test_fixed_batch_calls_get_exactly_their_size_and_padded_rows_are_dropped():
    seen: list[int] = []

    def infer(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return batch.reshape(len(batch), -1)[:, :2] * 2.0

    x = np.arange(5 * 3 * 2 * 2, dtype=np.float64).reshape(5, 3, 2, 2)
    out = infer_in_batches(infer, x, 2, pad=True, dtype="float32")
    assert seen == [2, 2, 2] and out.dtype == np.float32
    np.testing.assert_array_equal(out, x.reshape(5, -1)[:, :2] * 2.0)
    seen.clear()
    infer_in_batches(infer, x, 2)  # a dynamic batch: the last call is short, nothing padded
    assert seen == [2, 2, 1]
