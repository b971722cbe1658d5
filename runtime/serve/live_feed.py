"""A live source classified continuously for the server: newest frame in, newest result out.

The capture is :class:`edgecls.runtime.sources.live_capture.FrameSource` in its newest-frame mode (video files
play at their frame rate and start again at the end), so a result is never older than one frame interval plus one
model call.
A feed thread takes the newest frame, preprocesses it, sends it through the server's
:class:`~edgecls.runtime.serve.batcher.DynamicBatcher` (the model is shared with uploads and called from one
thread only) and publishes a :class:`edgecls.runtime.sources.records.Record`, the row ``edgecls run --json``
prints.
A source that ends or gives up reconnecting is opened again after ``reopen_s``; its last error stays visible
in :meth:`LiveFeed.status` until frames come back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edgecls.runtime.inference.annotate import annotate
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.inference.preprocess import preprocess
from edgecls.runtime.serve.batcher import DynamicBatcher, ServerBusy
from edgecls.runtime.serve.metrics import ServeMetrics
from edgecls.runtime.sources.live_capture import CaptureSettings, FrameSource
from edgecls.runtime.sources.records import Record
from edgecls.runtime.sources.source_specs import SourceSpec
from edgecls.runtime.terminal.redact import redact


@dataclass(frozen=True)
class LiveResult:
    seq: int  # 1, 2, ... per published result
    record: Record  # age_ms: frame capture -> result
    captured: float  # time.monotonic() of the frame's capture
    image: np.ndarray  # uint8[H, W, 3] BGR, the classified frame


class LiveFeed:
    def __init__(
        self,
        spec: SourceSpec,
        model: Callable[[], Classifier],  # the served model now (a reload swaps it between frames)
        batcher: DynamicBatcher,
        metrics: ServeMetrics,
        top_k: int = 3,
        capture: CaptureSettings | None = None,
        reopen_s: float = 2.0,
    ) -> None:
        self.spec = spec
        self.model = model
        self.batcher = batcher
        self.metrics = metrics
        self.top_k = top_k
        self.capture = capture or CaptureSettings(realtime=True, retries=5, backoff=0.5, backoff_max=4.0)
        self.reopen_s = reopen_s
        self._lock = threading.Lock()
        self._latest: LiveResult | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"live {spec.name}", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self.error: str | None = None
        self.results = 0
        self.reopened = 0
        self._source: FrameSource | None = None

    # --- server side (event loop) -----------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    @property
    def latest(self) -> LiveResult | None:
        with self._lock:
            return self._latest

    async def wait_newer(self, seq: int, timeout: float) -> LiveResult | None:
        """The newest result once its seq is above ``seq``; None after ``timeout`` seconds without one."""
        latest = self.latest
        if latest is not None and latest.seq > seq:
            return latest
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            return None
        latest = self.latest
        return latest if latest is not None and latest.seq > seq else None

    def _notify(self) -> None:  # in the event loop: wake every waiter, arm a fresh event for the next result
        self._changed.set()
        self._changed = asyncio.Event()

    def jpeg(self, result: LiveResult) -> bytes:
        """The frame of ``result`` with its top-k drawn on, as JPEG (encoded once per result for all viewers)."""
        with self._lock:
            if self._jpeg is not None and self._jpeg[0] == result.seq:
                return self._jpeg[1]
        ok, buf = cv2.imencode(".jpg", annotate(result.image, result.record.predictions, lines=self.top_k),
                               [cv2.IMWRITE_JPEG_QUALITY, 80])
        data = buf.tobytes() if ok else b""
        with self._lock:
            self._jpeg = (result.seq, data)
        return data

    def status(self) -> dict[str, object]:
        src = self._source
        return {
            "source": self.spec.name,
            "results": self.results,
            "frames_read": src.frames_read if src else 0,
            "frames_skipped": src.frames_dropped if src else 0,
            "reconnects": (src.reconnects if src else 0) + self.reopened,
            "error": redact(self.error) if self.error else None,  # unauthenticated /readyz shows it
        }

    # --- feed thread --------------------------------------------------------------------------------------
    def _open(self) -> FrameSource:
        self._source = FrameSource(self.spec, self.capture).start()
        return self._source

    def _run(self) -> None:
        src = self._open()
        seq = 0
        try:
            while not self._stop.is_set():
                frames = src.take()
                if not frames:
                    if src.finished or src.check_stalled():
                        src.stop(join_timeout=0.5)
                        self.error = src.error  # None when a video file simply ended: play it again
                        if self.error and self._stop.wait(self.reopen_s):
                            return
                        self.reopened += 1
                        src = self._open()
                        continue
                    src.wakeup.wait(0.05)
                    src.wakeup.clear()
                    continue
                frame = frames[0]
                t0 = time.perf_counter()
                clf = self.model()
                try:
                    result = self.batcher.submit(clf, preprocess(frame.image, clf.contract), self.top_k).result(30.0)
                except ServerBusy:
                    continue  # uploads have filled the queue: skip this frame, the next one is newer anyway
                except Exception as e:  # a failed model call or a bad frame: report it, keep the feed alive
                    self.error = f"{self.spec.name}: {e}".splitlines()[0]
                    self._stop.wait(self.reopen_s)
                    continue
                now = time.monotonic()
                record = Record(self.spec.name, result.predictions, (time.perf_counter() - t0) * 1e3,
                                frame=frame.index, age_ms=(now - frame.captured) * 1e3)
                seq += 1
                self.results += 1
                self.error = None
                self.metrics.frame_age.observe(record.age_ms / 1e3)
                self.metrics.last_frame_age.set(record.age_ms / 1e3)
                with self._lock:
                    self._latest = LiveResult(seq, record, frame.captured, frame.image)
                if self._loop is not None and not self._loop.is_closed():
                    self._loop.call_soon_threadsafe(self._notify)
        finally:
            src.stop(join_timeout=0.5)
