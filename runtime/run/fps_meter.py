"""The smoothed results-per-second that ``edgecls run``'s console line and window show."""

from __future__ import annotations

import time
from collections import deque


class FpsMeter:
    """Results per second per source over the last ``window_s`` seconds (the live line and the window show it).

    Results arrive in bursts: a batch of frames finishes at one instant and its records follow back to back, so
    the gap between two records is either a whole batch interval or nearly zero, and 1 / gap swings between the
    two (27 -> 431 -> 8,819 fps on a video that ran at 267). The meter counts frames per completion instant
    instead: ``tick(source, at=record.done)`` groups the records of one batch. The rate is measured up to the
    newest *complete* instant (the one before the current, whose records may still be arriving): the frames
    that completed after the window's first instant, divided by the time between the two. No figure until
    three instants are known.
    """

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._groups: dict[str, deque[list[float]]] = {}  # source -> [completion time, frames] oldest first

    def tick(self, source: str, at: float | None = None) -> float | None:
        """Count one result of ``source`` completed at ``at`` (monotonic seconds; default now) -> fps or None."""
        now = time.monotonic() if at is None else at
        groups = self._groups.setdefault(source, deque())
        if groups and groups[-1][0] == now:
            groups[-1][1] += 1
        else:
            groups.append([now, 1])
        if len(groups) < 3:
            return None
        end = groups[-2][0]  # the newest complete instant
        # Keep the newest instant at or before the window's start as the reference the rate is measured from.
        while len(groups) > 3 and groups[1][0] <= end - self.window_s:
            groups.popleft()
        frames = sum(n for _t, n in list(groups)[1:-1])
        return frames / (end - groups[0][0])

    def __contains__(self, source: str) -> bool:
        return source in self._groups
