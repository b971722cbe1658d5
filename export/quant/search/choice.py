"""The pick among every trial of the search: the most accurate within budget, unless a faster graph is faster for
certain, and never an int8 file slower than fp32 when something else is on offer.

Trials whose fused graphs are identical (``fused_graph.graph_signature``: same kernels, same shapes, only weight
values differ) run at the same speed, so among them only accuracy ranks. Between different graphs, the faster one
wins only when interleaved repeated timing (``paired_timing``) shows a gap that noise cannot cross; otherwise the
more accurate one wins. Over budget, a pick slower than fp32 gives way to the most accurate other graph that is not
slower, else the frontier's fastest point. The pick's timing against fp32 (``speed_vs_fp32``) is the one the speed
step, the report and the advice use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgecls.export.quant.search.speed_vs_fp32 import SpeedVsFp32
from edgecls.export.quant.search.trials import Trial, TrialBench, eligible, fits, ranked


@dataclass(frozen=True)
class Choice:
    pick: Trial
    budget_met: bool  # on the search images
    notes: list[str] = field(default_factory=list)  # how it was chosen: graphs compared, timed, vs fp32
    speed: SpeedVsFp32 | None = None  # the pick against fp32 (None: no fp32 file to time against)


def _per_graph(trials: list[Trial]) -> list[Trial]:
    """The most accurate trial of each distinct fused graph, most accurate first."""
    best: dict[str, Trial] = {}
    for t in ranked(trials):
        best.setdefault(t.graph, t)
    return list(best.values())


def _offer_instead(bench: TrialBench, pick: Trial, speed: SpeedVsFp32, others: list[Trial], pool: list[Trial]) -> tuple[
    Trial, SpeedVsFp32, str
]:
    """Over budget, ``pick`` (the most accurate) runs slower than fp32: the most accurate of the other fused graphs
    (``others``, most accurate first) that interleaved timing does not find slower than fp32, else the fastest of
    ``pool`` (the frontier's fastest point). Returns (new pick, its speed against fp32, what was said)."""
    said = (
        f"the most accurate int8 model ({pick.label}, drop {pick.drop_points:+.2f}) runs at {speed.line()}: "
        "slower than fp32, so never the answer; offered instead: "
    )
    for other in others:  # a graph as fast as another is no reason to ship its least accurate weights
        theirs = bench.versus_fp32(other.path)
        if not theirs.slower:
            faster = f"{other.label} (drop {other.drop_points:+.2f}, {theirs.line()})"
            return other, theirs, f"{said}the most accurate trial no slower than fp32, {faster}"
    fastest = min(pool, key=lambda t: t.latency_p50_ms)
    return (
        fastest,
        speed if fastest is pick else bench.versus_fp32(fastest.path),
        f"{said}no other graph is faster than fp32; the frontier's fastest point, {fastest.label} "
        f"(drop {fastest.drop_points:+.2f})",
    )


def choose(bench: TrialBench, max_drop: float) -> Choice:
    """Within budget: the most accurate trial, unless a trial of a *different* fused graph is faster by a margin
    interleaved timing confirms. Over budget: the most accurate eligible trial, unless it is slower than fp32."""
    pool = [t for t in bench.trials if eligible(t)] or bench.trials
    fitting = [t for t in pool if fits(t, max_drop)]
    notes: list[str] = []
    graphs = _per_graph(fitting or pool)
    pick = graphs[0]
    if len(graphs) < len(fitting or pool):
        notes.append(
            f"{len(fitting or pool)} candidate trials run {len(graphs)} distinct fused graph(s): trials of one "
            "graph differ only in weight values and are ranked by accuracy, never by their timings"
        )
    if fitting:
        rival = min(graphs, key=lambda t: t.latency_p50_ms)
        if rival is not pick:
            r = bench.ratio(rival.path, pick.path)
            faster = r.a_faster()
            notes.append(
                f"interleaved timing: {rival.label} runs at {r.median:.2f}x the time of {pick.label} "
                f"(rounds {r.low:.2f}-{r.high:.2f}): "
                + ("faster beyond the noise margin, chosen" if faster else "not faster beyond noise, not chosen")
            )
            pick = rival if faster else pick
    speed = None
    if bench.fp32_path is not None:
        speed = bench.versus_fp32(pick.path)
        if speed.slower and not fitting:
            pick, speed, note = _offer_instead(bench, pick, speed, graphs[1:], pool)
            notes.append(note)
    return Choice(pick, bool(fitting), notes, speed)
