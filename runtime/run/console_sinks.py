"""Text outputs of ``edgecls run``: the console (table / live line), JSON Lines, and notices on stderr.

- :class:`JsonLinesSink`: one JSON object per line on stdout, flushed per record so a pipe sees results live:
  ``{"source", "frame"?, "top_k": [{"label", "index", "score"}], "latency_ms", "age_ms"?}`` or
  ``{"source", "frame"?, "error"}``.
- :class:`ConsoleSink`: image files as a rich table (streamed lines for long runs), live sources as one
  status line per source that rewrites itself on a terminal; errors go to stderr at once.
- :class:`StderrNotices`: errors and notices as lines on stderr (beside ``--json``).

rich is imported only by the console sink, so ``--json`` runs never pay for it. Sources and labels come from
outside (file names, a model's contract): every line and cell shows them through :mod:`edgecls.runtime.terminal.text`.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import IO, Any

from edgecls.runtime.inference.classifier import Prediction
from edgecls.runtime.run.fps_meter import FpsMeter
from edgecls.runtime.sources.records import ErrorRecord, Record, RunSummary
from edgecls.runtime.sources.sinks import QuietSink
from edgecls.runtime.terminal.text import plain, rich_text


def format_predictions(preds: list[Prediction], limit: int = 3) -> str:
    return "  ".join(f"{p.label} {p.score:.3f}" for p in preds[:limit])


class StderrNotices(QuietSink):
    """Errors and notices (reconnects) as lines on stderr; with --json, so stdout stays pure JSON Lines."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    def error(self, record: ErrorRecord) -> None:
        print(f"error: {plain(record.error)}", file=self.stream, flush=True)

    def notice(self, source: str, message: str) -> None:
        print(f"note: {plain(message)}", file=self.stream, flush=True)


class JsonLinesSink(QuietSink):
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def _write(self, obj: dict[str, Any]) -> None:
        with self._lock:
            self.stream.write(json.dumps(obj) + "\n")
            self.stream.flush()

    def result(self, record: Record) -> None:
        self._write(record.to_dict())

    def error(self, record: ErrorRecord) -> None:
        self._write(record.to_dict())


class ConsoleSink(StderrNotices):
    """Human output: a table for image files, a self-rewriting line per live source, errors on stderr."""

    TABLE_LIMIT = 200  # beyond this many image rows, stream lines instead of holding a table

    def __init__(self, top_k: int, stream_rows: bool = False) -> None:
        super().__init__()
        from rich.console import Console

        self.console = Console(highlight=False)
        self.top_k = top_k
        self.rows: list[Record] = []
        self.streamed = stream_rows  # --watch: a line per file as it comes, never a table held back to the end
        self.fps = FpsMeter()

    def result(self, record: Record) -> None:
        if record.frame is None:
            self.rows.append(record)
            if self.streamed or len(self.rows) > self.TABLE_LIMIT:
                self._flush_rows_as_lines()
            return
        fps = self.fps.tick(record.source, at=record.done)
        age = f"  age {record.age_ms:.0f} ms" if record.age_ms is not None else ""
        line = plain(
            f"{record.source} #{record.frame}: {format_predictions(record.predictions, self.top_k)}"
            f"  {record.latency_ms:.1f} ms{age}" + (f"  {fps:.1f} fps" if fps else "")
        )
        if self.console.is_terminal:
            self.console.file.write("\r\x1b[K" + line)
            self.console.file.flush()
        else:
            self.console.print(line, markup=False)

    def _flush_rows_as_lines(self) -> None:
        for r in self.rows:
            self.console.print(
                plain(f"{r.source}: {format_predictions(r.predictions, self.top_k)}  {r.latency_ms:.1f} ms"),
                markup=False,
            )
        self.rows.clear()
        self.streamed = True

    def source_done(self, source: str) -> None:
        if source in self.fps and self.console.is_terminal:
            self.console.file.write("\n")

    def close(self, summary: RunSummary) -> None:
        if self.streamed:
            self._flush_rows_as_lines()
        elif self.rows:
            from rich.table import Table

            table = Table(show_edge=False, pad_edge=False)
            table.add_column("source", overflow="fold", ratio=3)
            for i in range(self.top_k):
                table.add_column("top-1" if i == 0 else f"#{i + 1}")
            table.add_column("ms", justify="right")
            for r in self.rows:
                cells = [rich_text(f"{p.label} {p.score:.3f}") for p in r.predictions[: self.top_k]]
                cells += [rich_text("")] * (self.top_k - len(cells))
                table.add_row(rich_text(r.source), *cells, f"{r.latency_ms:.1f}")
            self.console.print(table)
