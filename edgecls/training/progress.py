"""What a training run shows while it works: a rich progress bar (per batch) and log lines, both on stderr."""

from __future__ import annotations

import sys
from typing import Any

from edgecls.runtime.terminal.text import plain


def log_to_stderr(msg: str) -> None:
    """The default logger: one line per message, flushed (training logs survive a crash mid-epoch)."""
    print(plain(msg), file=sys.stderr, flush=True)  # messages quote paths and class names


def make_progress(
    enabled: bool, metrics: str = "loss {task.fields[loss]:.4f}  acc {task.fields[acc]:5.1f}%", time_left: bool = False
) -> Any:
    """A transient rich Progress on stderr (description, bar, steps done, ``metrics`` from the task's fields, and
    the time elapsed or, with ``time_left``, rich's estimate of the time left); None if disabled."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    clock = [TextColumn("left"), TimeRemainingColumn()] if time_left else [TimeElapsedColumn()]
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(metrics),
        *clock,
        transient=True,
        console=Console(stderr=True),
    )
