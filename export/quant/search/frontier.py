"""The accuracy/speed frontier of the budget search's trials: a table row per trial and a plot.

A trial is on the frontier when no other trial is both at least as accurate and at least as fast (and
strictly better in one). ``--max-drop`` picks the fastest trial within budget; the frontier shows what a
looser or tighter budget would have bought.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def _graph_latency(trials: list[dict[str, Any]]) -> list[float]:
    """Each trial's latency, as the median over the trials of its fused graph (``graph``): trials of one graph
    run the same kernels, so their timings differ only by noise and must not rank them."""
    by_graph: dict[Any, list[float]] = {}
    for i, t in enumerate(trials):
        by_graph.setdefault(t.get("graph", i), []).append(t["latency_p50_ms"])
    return [float(np.median(by_graph[t.get("graph", i)])) for i, t in enumerate(trials)]


def frontier(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Pareto-optimal trials (lower ``drop_points`` and lower latency are better), fastest first; trials of one
    fused graph share their median latency."""
    lat = _graph_latency(trials)
    out = []
    for i, t in enumerate(trials):
        dominated = any(
            o["drop_points"] <= t["drop_points"]
            and lat[j] <= lat[i]
            and (o["drop_points"] < t["drop_points"] or lat[j] < lat[i])
            for j, o in enumerate(trials)
        )
        if not dominated:
            out.append(t)
    return sorted(out, key=lambda t: t["latency_p50_ms"])


def plot_frontier(
    trials: list[dict[str, Any]],
    fp32_ms: float,
    max_drop: float,
    chosen: str,
    path: str | os.PathLike[str],
    metric: str,
) -> Path | None:
    """Scatter of drop vs speed-up over fp32 with the frontier and the budget line; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    front = frontier(trials)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    speed = [fp32_ms / t["latency_p50_ms"] for t in trials]
    ax.scatter(speed, [t["drop_points"] for t in trials], c="0.6", label="trials")
    ax.plot(
        [fp32_ms / t["latency_p50_ms"] for t in front],
        [t["drop_points"] for t in front],
        "o-",
        c="tab:blue",
        label="frontier",
    )
    pick = [t for t in trials if t["recipe"] == chosen]
    if pick:
        ax.scatter([fp32_ms / pick[0]["latency_p50_ms"]], [pick[0]["drop_points"]], c="tab:red", s=80, label="chosen")
    ax.axhline(max_drop, ls="--", c="tab:red", lw=1, label=f"budget {max_drop:g} pts")
    ax.axvline(1.0, ls=":", c="0.3", lw=1)
    what = "top-1" if metric == "top1" else "agreement with fp32"
    ax.set_xlabel("speed-up over fp32 (p50, batch 1, this CPU)")
    ax.set_ylabel(f"{what}: drop in points (search images)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
