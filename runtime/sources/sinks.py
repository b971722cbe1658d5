"""The sink interface: where :func:`~edgecls.runtime.sources.source_loop.run_sources` hands its rows.

A :class:`Sink` receives each result and error row as it happens, notices (reconnects), the end of each
source and, last, the run's summary. :class:`QuietSink` gives every hook a no-op default;
:class:`MultiSink` fans one stream of rows out to several sinks. ``edgecls run``'s outputs (console, CSV,
annotated files, a window) and ``edgecls batch``'s Parquet table are sinks.
"""

from __future__ import annotations

from typing import Protocol

from edgecls.runtime.sources.records import ErrorRecord, Record, RunSummary


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
