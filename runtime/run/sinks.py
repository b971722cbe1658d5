"""The sink interface of ``edgecls run`` and the pieces every sink shares.

A :class:`Sink` receives each result and error row as it happens, notices (reconnects), the end of each
source and, last, the run's summary. :class:`QuietSink` gives every hook a no-op default;
:class:`MultiSink` fans one run out to several sinks; :class:`FpsMeter` is the smoothed results-per-second the
console line and the window show.
"""

from __future__ import annotations

import time
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
    """Results per second per source, exponentially smoothed (what the live line and the window show)."""

    def __init__(self, smoothing: float = 0.8) -> None:
        self.smoothing = smoothing
        self._last: dict[str, float] = {}
        self._fps: dict[str, float] = {}

    def tick(self, source: str) -> float | None:
        now = time.monotonic()
        last = self._last.get(source)
        self._last[source] = now
        if last is not None and now > last:
            rate = 1.0 / (now - last)
            prev = self._fps.get(source, rate)
            self._fps[source] = self.smoothing * prev + (1 - self.smoothing) * rate
        return self._fps.get(source)

    def __contains__(self, source: str) -> bool:
        return source in self._last
