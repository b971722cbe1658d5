"""What ``--watch`` is given (``--settle``, ``--move-done``): kept free of heavy imports, since the command line
reads its defaults when it starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgecls.runtime.errors import EdgeclsError

DEFAULT_SETTLE_S = 2.0


@dataclass(frozen=True)
class WatchOptions:
    """``--watch`` (this object's presence), ``--settle SECONDS``, ``--move-done DIR``."""

    settle_s: float = DEFAULT_SETTLE_S  # unchanged size and mtime for this long = the writer finished
    move_done: Path | None = None
    chunk: int = 64  # files classified between two commits: bounds the work redone after a kill

    def __post_init__(self) -> None:
        if self.settle_s < 0:
            raise EdgeclsError(f"--settle must be >= 0, got {self.settle_s}")

    @property
    def poll_s(self) -> float:
        return min(0.5, max(0.05, self.settle_s / 4))
