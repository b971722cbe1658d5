"""Sinks for ``edgecls run`` results: console (table / live line), JSON Lines, CSV, annotated files, a window.

- :class:`JsonLinesSink`: one JSON object per line on stdout, flushed per record so a pipe sees results live:
  ``{"source", "frame"?, "top_k": [{"label", "index", "score"}], "latency_ms", "age_ms"?}`` or
  ``{"source", "frame"?, "error"}``.
- :class:`ConsoleSink`: image files as a rich table (streamed lines for long runs), live sources as one
  status line per source that rewrites itself on a terminal; errors go to stderr at once.
- :class:`CsvSink`: a CSV written through :func:`edgecls.runtime.atomic.atomic_path`, so an interrupted run
  still publishes a complete file (on a clean stop) and a killed one leaves no half file.
- :class:`SaveSink`: annotated images (``DIR/<name>``) and annotated videos (``DIR/<source>.avi``, MJPG).
- :class:`ShowSink`: an OpenCV window per source with label, score and FPS; refuses without a display.

rich is imported only by the console sink, so ``--json`` runs never pay for it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from edgecls.runtime.atomic import atomic_path, atomic_write_bytes
from edgecls.runtime.classifier import Prediction
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.runner import ErrorRecord, Record, RunSummary, Sink


def format_predictions(preds: list[Prediction], limit: int = 3) -> str:
    return "  ".join(f"{p.label} {p.score:.3f}" for p in preds[:limit])


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


class _Quiet:
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


class StderrNotices(_Quiet):
    """Errors and notices (reconnects) as lines on stderr; with --json, so stdout stays pure JSON Lines."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    def error(self, record: ErrorRecord) -> None:
        print(f"error: {record.error}", file=self.stream, flush=True)

    def notice(self, source: str, message: str) -> None:
        print(f"note: {message}", file=self.stream, flush=True)


class JsonLinesSink(_Quiet):
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

    def __init__(self, top_k: int) -> None:
        super().__init__()
        from rich.console import Console

        self.console = Console(highlight=False)
        self.top_k = top_k
        self.rows: list[Record] = []
        self.streamed = False
        self.fps = FpsMeter()

    def result(self, record: Record) -> None:
        if record.frame is None:
            self.rows.append(record)
            if len(self.rows) > self.TABLE_LIMIT:
                self._flush_rows_as_lines()
            return
        fps = self.fps.tick(record.source)
        age = f"  age {record.age_ms:.0f} ms" if record.age_ms is not None else ""
        line = (
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
                f"{r.source}: {format_predictions(r.predictions, self.top_k)}  {r.latency_ms:.1f} ms",
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
                cells = [f"{p.label} {p.score:.3f}" for p in r.predictions[: self.top_k]]
                cells += [""] * (self.top_k - len(cells))
                table.add_row(r.source, *cells, f"{r.latency_ms:.1f}")
            self.console.print(table)


class CsvSink(_Quiet):
    """``source,frame,label,index,score,top_k,latency_ms,age_ms,error``; top_k holds all k as JSON.

    Every row is flushed, so a full disk shows up at once: the atomic write is then aborted (no half CSV
    is published) and one :class:`EdgeclsError` naming the file ends the run.
    """

    FIELDS = ("source", "frame", "label", "index", "score", "top_k", "latency_ms", "age_ms", "error")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._failed = False
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(path))
        try:
            self._file = self._stack.enter_context(open(tmp, "w", newline="", encoding="utf-8"))
        except OSError as e:
            self._abort(e)
        self._writer = csv.DictWriter(self._file, fieldnames=self.FIELDS)
        self._write(self._writer.writeheader)  # fails here, before any work, when the disk is full

    def _abort(self, e: OSError) -> None:
        self._failed = True
        with contextlib.suppress(EdgeclsError, OSError):  # atomic_path deletes its temporary
            self._stack.__exit__(type(e), e, e.__traceback__)
        raise EdgeclsError(f"--csv {self.path}: cannot write ({e.strerror or e})") from e

    def _write(self, fn: Any, *args: Any) -> None:
        if self._failed:
            return
        try:
            fn(*args)
            self._file.flush()
        except OSError as e:
            self._abort(e)

    def result(self, record: Record) -> None:
        best = record.predictions[0]
        row = {
            "source": record.source,
            "frame": "" if record.frame is None else record.frame,
            "label": best.label,
            "index": best.index,
            "score": f"{best.score:.6f}",
            "top_k": json.dumps([p.to_dict() for p in record.predictions]),
            "latency_ms": f"{record.latency_ms:.3f}",
            "age_ms": "" if record.age_ms is None else f"{record.age_ms:.3f}",
            "error": "",
        }
        self._write(self._writer.writerow, row)

    def error(self, record: ErrorRecord) -> None:
        row = {"source": record.source, "frame": "" if record.frame is None else record.frame, "error": record.error}
        self._write(self._writer.writerow, row)

    def close(self, summary: RunSummary) -> None:
        if self._failed:
            return
        self._write(lambda: None)
        try:
            self._stack.close()  # closes the file, fsyncs and renames it onto the target
        except OSError as e:
            raise EdgeclsError(f"--csv {self.path}: cannot write ({e.strerror or e})") from e


def annotate(image: np.ndarray, preds: list[Prediction], fps: float | None = None, lines: int = 1) -> np.ndarray:
    """A copy of ``uint8[H, W, 3]`` BGR with the best ``lines`` labels and scores (and FPS) in the corner."""
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.4, min(w, h) / 640.0)
    thick = max(1, int(round(scale * 2)))
    texts = [f"{p.label} {p.score:.2f}" for p in preds[:lines]]
    if fps is not None:
        texts.append(f"{fps:.1f} FPS")
    y = 0
    for text in texts:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        y += th + base + 4
        cv2.rectangle(out, (0, y - th - base - 4), (tw + 8, y + 2), (0, 0, 0), -1)
        cv2.putText(out, text, (4, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "source"


class SaveSink(_Quiet):
    """Annotated copies under ``directory``: images keep their name, frame sources become MJPG .avi files."""

    def __init__(self, directory: str | os.PathLike[str], fps: float = 15.0) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EdgeclsError(f"--save {self.dir}: cannot create folder ({e.strerror or e})") from e
        self.fps = fps
        self._used: set[str] = set()
        self._videos: dict[str, tuple[contextlib.ExitStack, cv2.VideoWriter]] = {}

    def _unique(self, name: str) -> Path:
        stem, suffix = os.path.splitext(name)
        candidate, n = name, 1
        while candidate in self._used:
            candidate, n = f"{stem}_{n}{suffix}", n + 1
        self._used.add(candidate)
        return self.dir / candidate

    def result(self, record: Record) -> None:
        if record.image is None:
            return
        image = annotate(record.image, record.predictions)
        if record.frame is None:
            name = Path(record.source).name
            suffix = Path(name).suffix.lower()
            if suffix not in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
                name = Path(name).stem + ".png"
                suffix = ".png"
            ok, buf = cv2.imencode(suffix, image)
            if ok:
                atomic_write_bytes(self._unique(name), buf.tobytes())
            return
        if record.source not in self._videos:
            stack = contextlib.ExitStack()
            tmp = stack.enter_context(atomic_path(self._unique(_safe_name(record.source) + ".avi")))
            h, w = image.shape[:2]
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, (w, h))
            self._videos[record.source] = (stack, writer)
        self._videos[record.source][1].write(image)

    def source_done(self, source: str) -> None:
        entry = self._videos.pop(source, None)
        if entry is not None:
            stack, writer = entry
            writer.release()
            stack.close()

    def close(self, summary: RunSummary) -> None:
        for source in list(self._videos):
            self.source_done(source)


def display_available() -> str | None:
    """None when a window can be shown, else why not."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    return None


class ShowSink(_Quiet):
    """One OpenCV window per source with the top label, score and FPS; q or Esc stops the run."""

    def __init__(self, stop: threading.Event) -> None:
        why = display_available()
        if why is not None:
            raise EdgeclsError(f"--show needs a display: {why}; use --save DIR to write annotated output")
        self.stop = stop
        self.fps = FpsMeter(smoothing=0.9)
        self._windows: set[str] = set()

    def result(self, record: Record) -> None:
        if record.image is None:
            return
        fps = self.fps.tick(record.source)
        try:
            if record.source not in self._windows:
                cv2.namedWindow(record.source, cv2.WINDOW_NORMAL)
                self._windows.add(record.source)
            cv2.imshow(record.source, annotate(record.image, record.predictions, fps))
            key = cv2.waitKey(1 if record.frame is not None else 0) & 0xFF
        except cv2.error as e:
            raise EdgeclsError(f"--show: OpenCV cannot open a window ({str(e).strip().splitlines()[-1]})") from e
        if key in (ord("q"), 27):
            self.stop.set()

    def close(self, summary: RunSummary) -> None:
        if self._windows:
            with contextlib.suppress(cv2.error):
                cv2.destroyAllWindows()
