"""The loop behind ``edgecls run``: classify every source and hand each result to a sink.

Order: argument problems (missing files, empty folders) first as error records, then image files (batched,
parallel decode), then all frame sources together (video files, cameras, streams), one consumer loop taking
from each source's capture thread and batching whatever frames are ready.

A failing input never stops the run: it becomes an :class:`ErrorRecord`. A stop request (``stop`` event,
set on SIGINT/SIGTERM by :mod:`edgecls.runtime.sources.stop_signals` or by a ``--show`` window) ends the run
cleanly with what was done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edgecls.runtime.images.file_guard import DEFAULT_MAX_FILE_MB, MB
from edgecls.runtime.images.prescan.limits import DEFAULT_MAX_PIXELS
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.inference.preprocess import preprocess
from edgecls.runtime.sources.image_batches import classify_files
from edgecls.runtime.sources.live_capture import CaptureSettings, Frame, FrameSource
from edgecls.runtime.sources.records import ErrorRecord, Record, RunSummary, SourceStats
from edgecls.runtime.sources.sinks import Sink
from edgecls.runtime.sources.source_specs import SourceProblem, SourceSpec


@dataclass(frozen=True)
class LoopOptions:
    """How the loop classifies: top-k, batching, decode threads, capture settings, per-source frame limit."""

    top_k: int = 3
    batch_size: int = 8
    decode_threads: int | None = None  # image decode threads; None = image_batches.default_workers()
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    max_frames: int | None = None  # per frame source; None = until it ends
    keep_images: bool = False  # sinks need the pixels (--save, --show)
    max_file_bytes: int = DEFAULT_MAX_FILE_MB * MB  # image files larger than this are error rows (--max-file-mb)
    max_pixels: int = DEFAULT_MAX_PIXELS  # images declaring more pixels are error rows (--max-pixels)


class SourceRun:
    """One run's state (classifier, options, sink, stop event, counts) and the per-input paths: :meth:`images`
    (image files: the guarded reader, batched) and :meth:`frames` (frame sources). ``run_sources`` and the
    watch loop (:mod:`edgecls.runtime.sources.watch_loop`) both classify through it."""

    def __init__(
        self, classifier: Classifier, options: LoopOptions, sink: Sink, stop: threading.Event
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
            self.clf, paths, self.opt.top_k, self.opt.batch_size, self.opt.decode_threads, self.opt.keep_images,
            self.opt.max_file_bytes, self.opt.max_pixels,
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
                    done=now,
                )
            )


def run_sources(
    classifier: Classifier,
    sources: Sequence[SourceSpec],
    problems: Sequence[SourceProblem],
    sink: Sink,
    options: LoopOptions | None = None,
    stop: threading.Event | None = None,
) -> RunSummary:
    """Classify every source; each result or error goes to ``sink``. Returns the counts.

    A ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM turned into one by ``StopSignals``) ends the run cleanly:
    capture threads stop, the sink is closed (files flushed and published) and the summary says so.
    """
    run = SourceRun(classifier, options or LoopOptions(), sink, stop or threading.Event())
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
