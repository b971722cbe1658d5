"""What a training run shows while it works: a rich progress bar (per batch) and log lines, both on stderr."""

from __future__ import annotations

import sys
from typing import Any


def log_to_stderr(msg: str) -> None:
    """The default logger: one line per message, flushed (training logs survive a crash mid-epoch)."""
    print(msg, file=sys.stderr, flush=True)


def make_progress(enabled: bool) -> Any:
    """A transient rich Progress (epoch, batches done, running loss and accuracy) on stderr; None if disabled."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:5.1f}%"),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    )
