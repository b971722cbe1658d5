"""Is one ONNX file faster than another on this machine? Interleaved, repeated timing with a noise margin, measured
the way ``edgecls run`` runs a model and ``edgecls bench`` times it.

Sessions: the bench's own loader (``runtime/bench/onnxruntime_loader.py``: ``create_session`` on the CPU provider,
the physical core count as intra-op threads, thread spinning off, as ``run`` and ``bench`` set them); input: the
bench's input (``runtime/bench/measure.input_array``: seeded standard-normal noise of the model's shape, batch 1
or the model's fixed batch); warm-up: the bench's ``DEFAULT_WARMUP`` calls per session; the timing loop:
``runtime/inference/latency.py``.

Why spinning must be off (issue 34): two sessions with spinning workers, timed in alternating blocks, never run
alone - after its block a session's worker spins on (measured: 10-30 ms of CPU burned during the other file's
10-call block), so on 2 cores every block shares a core with the idle session, and a 1.6x int8 file timed 0.99x
fp32 ("keep fp32") beside a report that said 1.60x.

Both sessions are built once and timed in alternating blocks (A B, B A, ...), each block one warm call and
``runs`` timed calls; every round gives a ratio of the blocks' medians, so a load change hits both sides of a
ratio. A file counts as faster only when the 80th percentile of the per-round ratios is below ``1 - margin``:
most rounds must show the gap, and by more than the margin. Rounds continue past ``ROUNDS`` (up to
``MAX_ROUNDS``) while neither file is faster: a loaded machine gets more rounds, a quiet one stops early.

Below ``MIN_RESOLVABLE_MS`` per call no file is called faster: at tens of microseconds, blocks of the *same* file
land in two or three speed states (wake-ups of the session's threads), per-round ratios of 0.7 / 1.0 / 1.4 that
persist for several rounds (measured on a 37 us model; a 0.65 ms one stays within 3%), and no margin separates
that from a real gap. Such models are too fast for their int8 speed to matter.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecls.runtime.inference.latency import DEFAULT_WARMUP, LatencyStats, measure_latency

ROUNDS = 7
MAX_ROUNDS = 15
RUNS_PER_BLOCK = 10
#: A gap below this share is not called a speed difference.
MARGIN = 0.10
#: Files whose calls both take less than this are never ranked by speed (see the module docstring).
MIN_RESOLVABLE_MS = 0.2


@dataclass(frozen=True)
class TimeRatio:
    """Per-round ratios ``time(a) / time(b)``: < 1 means ``a`` is faster. ``a`` / ``b``: each file's timed calls
    over all rounds (None: not recorded); ``settings``: how they were timed (threads, spin, batch, warm-up, runs
    per block)."""

    ratios: tuple[float, ...]
    a: LatencyStats | None = None
    b: LatencyStats | None = None
    settings: dict[str, Any] | None = None

    @property
    def slower_ms(self) -> float | None:
        """The slower file's p50 per call (None: not recorded)."""
        return None if self.a is None or self.b is None else max(self.a.p50_ms, self.b.p50_ms)

    @property
    def resolvable(self) -> bool:
        return self.slower_ms is None or self.slower_ms >= MIN_RESOLVABLE_MS

    @property
    def median(self) -> float:
        return float(np.median(self.ratios))

    @property
    def high(self) -> float:
        """80th percentile of the rounds' ratios: what most rounds stay below."""
        return float(np.quantile(self.ratios, 0.8))

    @property
    def low(self) -> float:
        return float(np.quantile(self.ratios, 0.2))

    def a_faster(self, margin: float = MARGIN) -> bool:
        return self.resolvable and self.high < 1.0 - margin

    def b_faster(self, margin: float = MARGIN) -> bool:
        return self.resolvable and self.low > 1.0 / (1.0 - margin)

    def decided(self) -> bool:
        return self.a_faster() or self.b_faster()


@dataclass
class _Timed:
    """One file's session, ready to time: its call on the bench's input, and every timed sample so far."""

    call: Callable[[], Any]
    samples: list[float]


def timing_threads() -> int:
    """The intra-op threads ``edgecls bench`` times with by default (and ``edgecls run`` gets from onnxruntime):
    the physical core count."""
    from edgecls.runtime.bench.env import collect_environment

    return collect_environment().physical_cores


def _input_of(runner: Any) -> tuple[np.ndarray, int]:
    """The bench's input for a loaded model (``measure.input_array``): batch 1, or the model's fixed batch."""
    from edgecls.runtime.bench.measure import input_array
    from edgecls.runtime.inference.batched_inference import fixed_batch_of

    batch = fixed_batch_of(runner.input_shape) or 1
    return input_array(runner, batch, runner.contract), batch


def bench_input(sess: Any) -> np.ndarray:
    """The bench's input for an onnxruntime session built elsewhere (the profiler's, node_profile.py)."""
    from edgecls.runtime.bench.rows import LoadedRunner
    from edgecls.runtime.contract.model_contract import contract_from_metadata
    from edgecls.runtime.inference.batched_inference import session_infer, session_input_dtype

    metadata = sess.get_modelmeta().custom_metadata_map
    runner = LoadedRunner(
        infer=session_infer(sess), input_shape=tuple(sess.get_inputs()[0].shape),
        input_dtype=session_input_dtype(sess), contract=contract_from_metadata(metadata),
    )
    return _input_of(runner)[0]


def timed_call(path: str | os.PathLike[str], threads: int, provider: str = "cpu") -> tuple[Callable[[], Any], int]:
    """One call of ``path`` as the bench makes it (its loader, no spinning, its input); returns it and its batch.
    ``provider``: as ``--provider`` names it (the int8 search times on ``cpu``; studies time ``openvino`` too)."""
    from edgecls.runtime.bench.onnxruntime_loader import load_onnxruntime

    runner = load_onnxruntime(str(path), provider, threads, spin=False)
    x, batch = _input_of(runner)
    return (lambda: runner.infer(x)), batch


def _block(t: _Timed, runs: int) -> float:
    """One block: a warm call (the other session just ran), then ``runs`` timed calls; their p50 in ms."""
    stats, samples, _ = measure_latency(t.call, runs=runs, warmup=1)
    t.samples += samples
    return stats.p50_ms


def time_ratio(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    rounds: int = ROUNDS,
    runs: int = RUNS_PER_BLOCK,
    max_rounds: int = MAX_ROUNDS,
    warmup: int = DEFAULT_WARMUP,
    providers: tuple[str, str] = ("cpu", "cpu"),
) -> TimeRatio:
    """Interleaved timing of files ``a`` and ``b`` as ``edgecls bench`` times them (batch 1, physical cores, no
    spinning): at least ``rounds`` rounds, more while neither is faster, at most ``max_rounds``. ``providers``:
    what runs ``a`` and ``b``."""
    threads = timing_threads()
    (call_a, batch), (call_b, _) = timed_call(a, threads, providers[0]), timed_call(b, threads, providers[1])
    timed = {"a": _Timed(call_a, []), "b": _Timed(call_b, [])}
    for t in timed.values():  # warm both before any round so neither pays for first-run allocations
        measure_latency(t.call, runs=1, warmup=warmup)
    ratios: list[float] = []
    result = TimeRatio(())
    for r in range(max(rounds, max_rounds)):
        p50 = {name: _block(timed[name], runs) for name in ("ab" if r % 2 == 0 else "ba")}  # alternate who is first
        ratios.append(p50["a"] / max(p50["b"], 1e-9))
        settings = {
            "batch": batch, "threads": threads, "spin": False, "warmup": warmup, "runs_per_block": runs,
            "rounds": len(ratios), "providers": list(providers),
        }
        result = TimeRatio(
            tuple(ratios), LatencyStats.of(timed["a"].samples), LatencyStats.of(timed["b"].samples), settings
        )
        if len(ratios) >= rounds and (result.decided() or not result.resolvable):
            break
    return result
