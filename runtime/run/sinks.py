"""The sink interface of ``edgecls run`` and the pieces every sink shares.

A :class:`Sink` receives each result and error row as it happens, notices (reconnects), the end of each
source and, last, the run's summary. :class:`QuietSink` gives every hook a no-op default;
:class:`MultiSink` fans one run out to several sinks; :class:`FpsMeter` is the smoothed results-per-second the
console line and the window show.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Protocol

from edgecls.runtime.run.records import ErrorRecord, Record, RunSummary


class Sink(Protocol):
    """Where results go (console, JSON Lines, CSV, annotated files, a window)."""

    def result(self, record: Record) -> None: ...
    def error(self, record: ErrorRecord) -> None: ...
    def notice(self, source: str, message: str) -> None: ...
    def source_done(self, source: str) -> None: ...
    def close(self, summary: RunSummary) -> None: ...


class QuietSink:
    """Default no-op hooks for sinks that care about only some events."""

    def result(self, record: Record) -> None:
        pass

    def error(self, record: ErrorRecord) -> None:
        pass

    def notice(self, source: str, message: str) -> None:
        pass

    def source_done(self, source: str) -> None:
        pass

    def close(self, summary: RunSummary) -> None:
        pass


class MultiSink:
    """Fan one stream of records out to several sinks; every sink is closed even if one fails."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def result(self, record: Record) -> None:
        for s in self.sinks:
            s.result(record)

    def error(self, record: ErrorRecord) -> None:
        for s in self.sinks:
            s.error(record)

    def notice(self, source: str, message: str) -> None:
        for s in self.sinks:
            s.notice(source, message)

    def source_done(self, source: str) -> None:
        for s in self.sinks:
            s.source_done(source)

    def close(self, summary: RunSummary) -> None:
        first: BaseException | None = None
        for s in self.sinks:
            try:
                s.close(summary)
            except BaseException as e:  # close the others, then re-raise the first failure
                first = first or e
        if first is not None:
            raise first


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
