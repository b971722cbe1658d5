"""Is one ONNX file faster than another on this machine? Interleaved, repeated timing with a noise margin.

Timing two files one after the other lets a change of load decide (the int8 search once saw the *same* fused
graph at 7.9 and 17.3 ms). Here both sessions are built once and timed in alternating blocks (A B, B A, ...),
each block a short run of the bench's timing loop; every round gives a ratio of the blocks' medians, so a load
change hits both sides of a ratio. A file counts as faster only when the 80th percentile of the per-round
ratios is below ``1 - margin``: most rounds must show the gap, and by more than the margin.

Below ``MIN_RESOLVABLE_MS`` per call no file is called faster: at tens of microseconds, blocks of the *same* file
land in two or three speed states (wake-ups of the session's threads), per-round ratios of 0.7 / 1.0 / 1.4 that
persist for several rounds (measured on a 37 us model; a 0.65 ms one stays within 3%), and no margin separates
that from a real gap. Such models are too fast for their int8 speed to matter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

ROUNDS = 7
RUNS_PER_BLOCK = 10
WARMUP = 5
#: A gap below this share is not called a speed difference.
MARGIN = 0.10
#: Files whose calls both take less than this are never ranked by speed (see the module docstring).
MIN_RESOLVABLE_MS = 0.2


@dataclass(frozen=True)
class TimeRatio:
    """Per-round ratios ``time(a) / time(b)`` (batch 1): < 1 means ``a`` is faster; ``slower_ms``: the slower
    file's median p50 per call (None: not recorded)."""

    ratios: tuple[float, ...]
    slower_ms: float | None = None

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


def time_ratio(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    x: np.ndarray,
    rounds: int = ROUNDS,
    runs: int = RUNS_PER_BLOCK,
) -> TimeRatio:
    """Interleaved batch-1 timing of files ``a`` and ``b`` on the float32[1, 3, h, w] input ``x``."""
    from edgecls.export.quant.evaluate import session_latency_ms
    from edgecls.runtime.providers.session import create_session

    sessions = [create_session(p, provider="cpu")[0] for p in (a, b)]
    for s in sessions:  # warm both before any round so neither pays for first-run allocations
        session_latency_ms(s, x, runs=1, warmup=WARMUP)
    ratios, ms = [], {0: [], 1: []}
    for r in range(rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)  # alternate who goes first
        p50 = {i: session_latency_ms(sessions[i], x, runs=runs, warmup=1)["p50_ms"] for i in order}
        ratios.append(p50[0] / max(p50[1], 1e-9))
        for i in (0, 1):
            ms[i].append(p50[i])
    return TimeRatio(tuple(ratios), max(float(np.median(ms[0])), float(np.median(ms[1]))))
