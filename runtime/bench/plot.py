"""The bench's plot: latency distribution per configuration, and speed vs accuracy when accuracy was measured.

matplotlib is imported only here, and only when a plot is asked for (``--plot``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgecls.runtime.atomic import atomic_path
from edgecls.runtime.bench.report import engine_provider, environment_line
from edgecls.runtime.bench.rows import BenchResult, BenchRow
from edgecls.runtime.errors import MissingExtraError


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise MissingExtraError("--plot needs matplotlib (pip install matplotlib, or the train extra)", "train") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mpl_at_least(major: int, minor: int) -> bool:
    import matplotlib

    parts = [int(p) for p in matplotlib.__version__.split(".")[:2] if p.isdigit()]
    return tuple(parts) >= (major, minor)


def family_name(family: str) -> str:
    """``runs/mnv2/export/model`` -> ``mnv2``: the folder that tells model families apart."""
    parent = Path(family).parent
    return parent.parent.name if parent.name == "export" and parent.parent.name else parent.name


def _short_label(row: BenchRow, with_family: bool) -> str:
    where = f"{family_name(row.family)}: " if with_family else ""
    return f"{where}{row.label} | {engine_provider(row)} | b{row.batch} t{row.threads or 'def'}"


def write_plot(result: BenchResult, path: str | os.PathLike[str], rows: Sequence[BenchRow] | None = None) -> Path:
    """Latency distribution (ms per image) per configuration; beside it speed vs accuracy when known."""
    plt = _pyplot()
    ok = [r for r in (rows if rows is not None else result.rows) if r.ok and r.samples_ms and r.batch]
    scored = [r for r in ok if r.accuracy is not None]
    many = len({r.family for r in ok}) > 1
    ncols = 2 if scored else 1
    height = max(3.0, 0.35 * len(ok) + 1.5)
    fig, axes = plt.subplots(1, ncols, figsize=(9 + 5 * (ncols - 1), height), squeeze=False)
    ax = axes[0][0]
    if ok:
        data = [[s / r.batch for s in r.samples_ms] for r in ok]
        horizontal = {"orientation": "horizontal"} if _mpl_at_least(3, 10) else {"vert": False}
        ax.boxplot(data, showfliers=True, flierprops={"markersize": 2}, **horizontal)
        ax.set_yticks(range(1, len(ok) + 1), [_short_label(r, many) for r in ok], fontsize=7)
        ax.set_xscale("log")
    ax.set_xlabel("latency per image, ms (log scale; box = p25-p75, whiskers 1.5 IQR)")
    ax.set_title("latency distribution")
    if scored:
        ax2 = axes[0][1]
        for r in scored:  # one legend entry per point: labels drawn beside points overlap
            x, y = (r.p50_ms or 0) / r.batch, 100 * (r.accuracy or 0)
            ax2.scatter([x], [y], s=25, label=f"{r.variant} {_short_label(r, many)}")
        ax2.legend(fontsize=5, loc="best")
        ax2.set_xscale("log")
        ax2.set_xlabel("p50 latency per image, ms (log)")
        ax2.set_ylabel("top-1 accuracy, %")
        lo = min(100 * (r.accuracy or 0) for r in scored)
        ax2.set_ylim(max(0.0, lo - max(2.0, 0.1 * (100 - lo))), 100.5)  # accuracy cannot pass 100%
        ax2.set_title("speed vs accuracy")
    import textwrap

    # The environment line is long (CPU, ISA flags, versions): wrap it so it is not cut at the figure's edges.
    fig.suptitle("\n".join(textwrap.wrap(environment_line(result.environment), 150)), fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
    return Path(path)
