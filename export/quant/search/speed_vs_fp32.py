"""The one timing of an int8 file against its fp32 model: the verdict's speed, the report's latencies and speed-up,
and the "keep fp32" advice all rest on it.

Issue 34: the report's speed-up (two sessions timed one after the other) said 1.60x while the search's advice
(a second, interleaved timing with spinning sessions) said 0.99x, "keep fp32". Now there is one measurement,
``paired_timing.time_ratio`` (interleaved rounds, the sessions, threads, warm-up and input of ``edgecls bench``),
and "slower" is said only when most rounds put int8 behind fp32 by more than the noise margin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from edgecls.export.quant.search.paired_timing import MARGIN, RUNS_PER_BLOCK, TimeRatio, time_ratio
from edgecls.runtime.inference.latency import DEFAULT_WARMUP, LatencyStats

FASTER = "faster"
SAME = "no faster beyond noise"
SLOWER = "slower"
UNRESOLVABLE = "too fast to time"


@dataclass(frozen=True)
class SpeedVsFp32:
    """``ratio``: int8 (``a``) against fp32 (``b``), per-round time ratios."""

    ratio: TimeRatio

    @property
    def speedup(self) -> float:
        """fp32's time over int8's, median of the rounds (> 1: int8 is faster)."""
        return 1.0 / max(self.ratio.median, 1e-9)

    @property
    def verdict(self) -> str:
        if not self.ratio.resolvable:
            return UNRESOLVABLE
        if self.ratio.a_faster():
            return FASTER
        return SLOWER if self.ratio.b_faster() else SAME

    @property
    def slower(self) -> bool:
        """int8 is slower than fp32 beyond the noise margin: then fp32 is the better file."""
        return self.verdict == SLOWER

    def _stats(self) -> tuple[LatencyStats, LatencyStats]:
        assert self.ratio.a is not None and self.ratio.b is not None
        return self.ratio.a, self.ratio.b

    def line(self) -> str:
        """``1.60x fp32's speed (p50 2.42 vs 3.88 ms; batch 1, 2 threads, no spinning; 7 interleaved rounds,
        1.52-1.66x)``: the speed-up and the timings it rests on."""
        int8, fp32 = self._stats()
        s = self.ratio.settings or {}
        return (
            f"{self.speedup:.2f}x fp32's speed (p50 {int8.p50_ms:.2f} vs {fp32.p50_ms:.2f} ms; batch {s.get('batch')}, "
            f"{s.get('threads')} threads, no spinning; {len(self.ratio.ratios)} interleaved rounds, "
            f"{1 / self.ratio.high:.2f}-{1 / self.ratio.low:.2f}x)"
        )

    def advice(self) -> str:
        """What the timing means for the user, with the margin it was judged by."""
        return {
            FASTER: f"int8 is faster than fp32 beyond the {MARGIN:.0%} noise margin",
            SAME: f"int8 is not faster than fp32 beyond the {MARGIN:.0%} noise margin: it buys no speed here",
            SLOWER: f"int8 is slower than fp32 beyond the {MARGIN:.0%} noise margin: keep fp32",
            UNRESOLVABLE: "both run in under a fraction of a millisecond: too fast for their speed to be ranked",
        }[self.verdict]

    def latency(self) -> dict[str, dict[str, float]]:
        """The report's ``latency``: each file's p50/p90/runs/spread over all its timed calls."""
        int8, fp32 = self._stats()
        return {
            name: {"p50_ms": s.p50_ms, "p90_ms": s.p90_ms, "runs": s.runs, "spread": round(s.spread, 4)}
            for name, s in (("fp32", fp32), ("int8", int8))
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "speedup": round(self.speedup, 3),
            "line": self.line(),
            "verdict": self.verdict,
            "advice": self.advice(),
            "margin": MARGIN,
            "round_speedups": [round(1.0 / r, 3) for r in self.ratio.ratios],
            "latency": self.latency(),
            **(self.ratio.settings or {}),
            "method": "interleaved rounds, sessions as edgecls run and bench make them "
            "(runtime/inference/latency.py loop)",
        }


def speed_vs_fp32(
    int8_path: str | os.PathLike[str], fp32_path: str | os.PathLike[str], runs: int = RUNS_PER_BLOCK,
    warmup: int = DEFAULT_WARMUP,
) -> SpeedVsFp32:
    """``int8_path`` timed against ``fp32_path`` (``runs`` timed calls per block, ``warmup`` calls per session)."""
    return SpeedVsFp32(time_ratio(int8_path, fp32_path, runs=runs, warmup=warmup))

