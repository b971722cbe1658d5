"""``edgecls run`` as a library function: classify every source and hand each result to a sink.

Order: argument problems (missing files, empty folders) first as error records, then image files (batched,
parallel decode), then all frame sources together (video files, cameras, streams), one consumer loop taking
from each source's capture thread and batching whatever frames are ready.

A failing input never stops the run: it becomes an :class:`ErrorRecord`. A stop request (``stop`` event,
set by the CLI on SIGINT/SIGTERM or by a ``--show`` window) ends the run cleanly with what was done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edgecls.runtime.classifier import Classifier, Prediction
from edgecls.runtime.folder_runner import classify_files
from edgecls.runtime.live import CaptureSettings, Frame, FrameSource
from edgecls.runtime.preprocess import preprocess
from edgecls.runtime.sources import SourceProblem, SourceSpec


@dataclass
class Record:
    """One classified image or frame (``frame`` and ``age_ms`` are None for image files)."""

    source: str
    predictions: list[Prediction]
    latency_ms: float  # preprocessing + inference + top-k for this input (its share of a batch)
    frame: int | None = None
    age_ms: float | None = None  # capture -> result, for video files, cameras and streams
    image: np.ndarray | None = None  # uint8[H, W, 3] BGR, only when a sink needs pixels (--save, --show)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source}
        if self.frame is not None:
            d["frame"] = self.frame
        d["top_k"] = [p.to_dict() for p in self.predictions]
        d["latency_ms"] = round(self.latency_ms, 3)
        if self.age_ms is not None:
            d["age_ms"] = round(self.age_ms, 3)
        return d


@dataclass
class ErrorRecord:
    """An input that could not be handled; ``error`` is one line naming it."""

    source: str
    error: str
    frame: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source, "error": self.error}
        if self.frame is not None:
            d["frame"] = self.frame
        return d


@dataclass
class SourceStats:
    results: int = 0
    errors: int = 0
    dropped: int = 0
    reconnects: int = 0


@dataclass
class RunSummary:
    sources: int = 0
    results: int = 0
    errors: int = 0
    failed: list[str] = field(default_factory=list)  # sources with at least one error
    elapsed_s: float = 0.0
    interrupted: bool = False
    per_source: dict[str, SourceStats] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.errors == 0 and not self.failed

    def line(self) -> str:
        dropped = sum(s.dropped for s in self.per_source.values())
        parts = [
            f"{self.results} result(s)",
            f"{self.errors} error(s)",
            f"{len(self.failed)} of {self.sources} source(s) failed",
        ]
        if dropped:
            parts.append(f"{dropped} live frame(s) skipped to stay current")
        text = ", ".join(parts) + f" in {self.elapsed_s:.2f} s"
        return ("interrupted: " if self.interrupted else "") + text


class Sink(Protocol):
    """Where results go (console, JSON Lines, CSV, annotated files, a window)."""

    def result(self, record: Record) -> None: ...
    def error(self, record: ErrorRecord) -> None: ...
    def notice(self, source: str, message: str) -> None: ...
    def source_done(self, source: str) -> None: ...
    def close(self, summary: RunSummary) -> None: ...


@dataclass
class RunOptions:
    top_k: int = 5
    batch_size: int = 8
    workers: int | None = None
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    max_frames: int | None = None  # per frame source; None = until it ends
    keep_images: bool = False  # sinks need the pixels (--save, --show)


class _Run:
    def __init__(
        self, classifier: Classifier, options: RunOptions, sink: Sink, stop: threading.Event
    ) -> None:
        self.clf, self.opt, self.sink, self.stop = classifier, options, sink, stop
        self.summary = RunSummary()

    def stats(self, source: str) -> SourceStats:
        return self.summary.per_source.setdefault(source, SourceStats())

    def emit(self, record: Record) -> None:
        self.summary.results += 1
        self.stats(record.source).results += 1
        self.sink.result(record)

    def fail(self, record: ErrorRecord) -> None:
        self.summary.errors += 1
        self.stats(record.source).errors += 1
        if record.source not in self.summary.failed:
            self.summary.failed.append(record.source)
        self.sink.error(record)

    # --- image files -----------------------------------------------------------------------------------
    def images(self, paths: Sequence[str]) -> None:
        for r in classify_files(
            self.clf, paths, self.opt.top_k, self.opt.batch_size, self.opt.workers, self.opt.keep_images
        ):
            if r.error is not None:
                self.fail(ErrorRecord(r.source, r.error))
            else:
                assert r.predictions is not None
                self.emit(Record(r.source, r.predictions, r.latency_ms, image=r.image))
            self.sink.source_done(r.source)
            if self.stop.is_set():
                return

    # --- frame sources ---------------------------------------------------------------------------------
    def frames(self, specs: Sequence[SourceSpec]) -> None:
        wakeup = threading.Event()
        sources = [FrameSource(s, self.opt.capture, wakeup, self.sink.notice) for s in specs]
        for s in sources:
            self.stats(s.spec.name)
            s.start()
        active = list(sources)
        try:
            while active and not self.stop.is_set():
                wakeup.clear()
                batch: list[tuple[FrameSource, Frame]] = []
                # Fair share: a video file decoding ahead must not starve a camera of batch slots, so
                # each source gets at most its share and the starting source rotates every round.
                share = max(1, self.opt.batch_size // len(active))
                for src in active:
                    room = min(share, self.opt.batch_size - len(batch), self._remaining(src))
                    if room > 0:
                        batch.extend((src, f) for f in src.take(room))
                active.append(active.pop(0))
                if batch:
                    self._classify_frames(batch)
                for src in list(active):
                    done = self._reached_limit(src)
                    if done or src.finished or src.check_stalled():
                        src.stop(join_timeout=0.5)
                        self._end_source(src)
                        active.remove(src)
                if not batch and active:
                    wakeup.wait(0.05)
        finally:
            for src in active:
                src.stop(join_timeout=0.5)
                self._end_source(src, quiet=True)

    def _remaining(self, src: FrameSource) -> int:
        """Frames this source may still deliver under ``max_frames`` (a large number when unlimited)."""
        if self.opt.max_frames is None:
            return 1 << 30
        return self.opt.max_frames - self.stats(src.spec.name).results

    def _reached_limit(self, src: FrameSource) -> bool:
        return self._remaining(src) <= 0

    def _end_source(self, src: FrameSource, quiet: bool = False) -> None:
        st = self.stats(src.spec.name)
        st.dropped, st.reconnects = src.frames_dropped, src.reconnects
        if src.error and not quiet and not self._reached_limit(src):
            self.fail(ErrorRecord(src.spec.name, src.error))
        elif src.error is None and src.frames_read == 0 and not quiet and not self.stop.is_set():
            self.fail(ErrorRecord(src.spec.name, f"{src.spec.name}: no frames"))
        self.sink.source_done(src.spec.name)

    def _classify_frames(self, batch: list[tuple[FrameSource, Frame]]) -> None:
        t0 = time.perf_counter()
        x = np.stack([preprocess(f.image, self.clf.contract) for _, f in batch])
        preds = self.clf.classify(x, self.opt.top_k)
        now = time.monotonic()
        share = (time.perf_counter() - t0) * 1e3 / len(batch)
        for (src, frame), p in zip(batch, preds, strict=True):
            self.emit(
                Record(
                    src.spec.name,
                    p,
                    share,
                    frame=frame.index,
                    age_ms=(now - frame.captured) * 1e3,
                    image=frame.image if self.opt.keep_images else None,
                )
            )


def run_sources(
    classifier: Classifier,
    sources: Sequence[SourceSpec],
    problems: Sequence[SourceProblem],
    sink: Sink,
    options: RunOptions | None = None,
    stop: threading.Event | None = None,
) -> RunSummary:
    """Classify every source; each result or error goes to ``sink``. Returns the counts.

    A ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM turned into one by the CLI) ends the run cleanly:
    capture threads stop, the sink is closed (files flushed and published) and the summary says so.
    """
    run = _Run(classifier, options or RunOptions(), sink, stop or threading.Event())
    t0 = time.perf_counter()
    run.summary.sources = len(sources) + len(problems)
    try:
        for p in problems:
            run.fail(ErrorRecord(p.name, p.error))
        run.images([s.target for s in sources if s.kind == "image"])
        frame_specs = [s for s in sources if s.kind != "image"]
        if frame_specs and not run.stop.is_set():
            run.frames(frame_specs)
    except KeyboardInterrupt:
        run.summary.interrupted = True
    finally:
        run.summary.interrupted = run.summary.interrupted or run.stop.is_set()
        run.summary.elapsed_s = time.perf_counter() - t0
        sink.close(run.summary)
    return run.summary
