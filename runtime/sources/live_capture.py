"""Frame sources (video files, cameras, network streams) read in their own capture thread.

Two delivery modes, one class:

- ``latest`` (cameras, streams, and video files with ``realtime=True``): the capture thread reads as fast as
  the source delivers and keeps only the newest frame, so a result is never older than one frame interval
  plus one inference, however slow the model is (frames in between are dropped and counted).
- ``sequential`` (video files by default): every ``stride``-th frame is delivered in order through a small
  bounded queue, so decoding overlaps inference without ever dropping a frame.

Each :class:`Frame` carries its index in the source (file position for videos; frames received since the
start for cameras and streams, counted across reconnects) and the monotonic time the read returned.
Cameras and streams that fail are reopened with exponential back-off (``retries`` attempts); the end of
a video file ends its source; a read that hangs longer than ``read_timeout`` ends the source with an error.
OpenCV backends: CAP_FFMPEG for files and URLs (with open/read timeouts); cameras are V4L2 through OpenCV or
Raspberry Pi cameras through Picamera2 (:mod:`edgecls.runtime.sources.cameras`).

A little over 300 lines on purpose: the capture thread, its reconnect loop and both delivery modes share one
lock and one set of counters, and splitting them would hand that state across modules.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edgecls.runtime.errors import EdgeclsError, NoSuchCamera, SourceError
from edgecls.runtime.images.decode import to_bgr_uint8
from edgecls.runtime.sources.cameras import FrameReader, NoteCallback, open_camera
from edgecls.runtime.sources.source_specs import SourceSpec
from edgecls.runtime.terminal.redact import redact

EventCallback = Callable[[str, str], None]  # (source name, message)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` is ``uint8[H, W, 3]`` BGR."""

    index: int
    captured: float  # time.monotonic() when the read returned
    image: np.ndarray


@dataclass(frozen=True)
class CaptureSettings:
    stride: int = 1  # deliver every stride-th frame of a video file
    realtime: bool = False  # play video files at their frame rate, newest frame only (like a camera)
    retries: int = 5  # reopen attempts for cameras/streams before giving up (reset by every good frame)
    backoff: float = 0.5  # first reopen delay in seconds, doubled per attempt ...
    backoff_max: float = 8.0  # ... up to this
    open_timeout: float = 10.0  # seconds for FFmpeg to open a file or URL
    read_timeout: float = 10.0  # seconds without a frame before a source counts as stalled
    queue_size: int = 8  # sequential mode: frames decoded ahead of inference

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise EdgeclsError(f"--stride must be >= 1, got {self.stride}")
        if self.retries < 0 or self.backoff < 0 or self.read_timeout <= 0 or self.open_timeout <= 0:
            raise EdgeclsError("retries/backoff must be >= 0 and timeouts > 0")


def quiet_backend_logs() -> None:
    """Silence OpenCV's and FFmpeg's own console warnings (``[ WARN:0@...]``, ``Connection refused``).

    The CLI reports every source problem itself as one line; library users keep the defaults. FFmpeg reads
    its level when OpenCV first initialises it, so call this before the first VideoCapture.
    """
    import os

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # builds without the logging module
        pass


def open_capture(spec: SourceSpec, settings: CaptureSettings, note: NoteCallback | None = None) -> FrameReader:
    """Open ``spec`` with the right backend or raise :class:`SourceError` naming it (cameras: :mod:`.cameras`)."""
    if spec.kind == "camera":
        return open_camera(spec, settings.read_timeout, note)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(settings.open_timeout * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(settings.read_timeout * 1000),
    ]
    cap = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        what = "video file (corrupt or unsupported codec)" if spec.kind == "video" else "stream"
        raise SourceError(f"{spec.name}: cannot open {what}")
    return cap


class FrameSource:
    """A video file, camera or stream read by a daemon capture thread.

    The consumer calls :meth:`take` (never blocks) and checks :attr:`finished` / :attr:`error`;
    ``wakeup`` (shared by all sources of a run) is set whenever a frame arrives or a source ends, so one
    consumer loop can serve several sources without polling.
    """

    def __init__(
        self,
        spec: SourceSpec,
        settings: CaptureSettings = CaptureSettings(),
        wakeup: threading.Event | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.latest_mode = spec.live or settings.realtime
        self.wakeup = wakeup or threading.Event()
        self._on_event = on_event
        self._lock = threading.Lock()
        self._slot: Frame | None = None
        self._queue: collections.deque[Frame] = collections.deque()
        self._space = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture {spec.name}", daemon=True)
        self._ended = False
        self.error: str | None = None
        self.frames_read = 0
        self.frames_dropped = 0  # latest mode: frames replaced before the consumer took them
        self.reconnects = 0
        self.fps: float | None = None
        self._last_activity = time.monotonic()
        self._noted: set[str] = set()

    # --- consumer side -------------------------------------------------------------------------------
    def start(self) -> FrameSource:
        self._thread.start()
        return self

    def take(self, max_frames: int = 1) -> list[Frame]:
        """Newest frame (latest mode) or up to ``max_frames`` queued frames in order; [] if none is ready."""
        with self._lock:
            if self.latest_mode:
                frame, self._slot = self._slot, None
                return [frame] if frame is not None else []
            out = [self._queue.popleft() for _ in range(min(max_frames, len(self._queue)))]
            if out:
                # A full queue waiting on a slow model is not a stalled source.
                self._last_activity = time.monotonic()
                self._space.notify_all()
            return out

    @property
    def finished(self) -> bool:
        """The source ended (end of file, gave up reconnecting, stopped) and every frame has been taken."""
        with self._lock:
            return self._ended and self._slot is None and not self._queue

    def check_stalled(self, now: float | None = None) -> bool:
        """End the source with an error when its capture thread has produced nothing for too long.

        FFmpeg's own read timeout normally fires first; this catches backends without one (a hung camera).
        """
        now = time.monotonic() if now is None else now
        limit = self.settings.read_timeout + self.settings.open_timeout + 1.0
        with self._lock:
            stalled = not self._ended and now - self._last_activity > limit
        if stalled:
            self._finish(f"{self.spec.name}: no frame for {limit:.0f} s (source stalled)")
            self._stop.set()
        return stalled

    def stop(self, join_timeout: float = 2.0) -> None:
        self._stop.set()
        with self._lock:
            self._space.notify_all()
        if self._thread.is_alive():
            self._thread.join(join_timeout)

    # --- capture thread ------------------------------------------------------------------------------
    def _event(self, message: str) -> None:
        if self._on_event is not None:
            self._on_event(self.spec.name, redact(message))

    def _note_once(self, message: str) -> None:
        """A note that would repeat on every reconnect (which backend a camera uses) is said once."""
        if message not in self._noted:
            self._noted.add(message)
            self._event(message)

    def _finish(self, error: str | None = None) -> None:
        with self._lock:
            if not self._ended:
                self._ended = True
                if error and self.error is None:
                    self.error = redact(error)  # library messages may quote the URL opened, password included
            self._space.notify_all()
        self.wakeup.set()

    def _publish(self, frame: Frame) -> None:
        with self._lock:
            self._last_activity = frame.captured
            if self.latest_mode:
                if self._slot is not None:
                    self.frames_dropped += 1
                self._slot = frame
            else:
                while len(self._queue) >= self.settings.queue_size and not self._stop.is_set():
                    self._space.wait(0.1)
                self._queue.append(frame)
        self.wakeup.set()

    def _run(self) -> None:
        try:
            if self.spec.live:
                self._run_live()
            else:
                self._run_file()
        except Exception as e:  # the thread must always end the source with a message, never die silently
            self._finish(f"{self.spec.name}: capture failed ({type(e).__name__}: {e})".splitlines()[0])
        else:
            self._finish()

    def _run_file(self) -> None:
        try:
            cap = open_capture(self.spec, self.settings)
        except SourceError as e:
            self._finish(str(e))
            return
        try:
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.fps = fps if 0 < fps < 1000 else None
            pace = 1.0 / self.fps if self.settings.realtime and self.fps else 0.0
            t0 = time.monotonic()
            index = -1
            while not self._stop.is_set():
                # Frames 0, stride, 2*stride...: skip with grab() (no colour conversion), read the next.
                ok = True
                for _ in range(self.settings.stride - 1 if index >= 0 else 0):
                    ok = cap.grab()
                    index += 1
                    if not ok:
                        break
                if ok:
                    ok, image = cap.read()
                    index += 1
                if not ok:
                    if self.frames_read == 0:
                        self._finish(f"{self.spec.name}: no decodable frame (corrupt or unsupported video)")
                    return  # end of file ends the source
                if pace:
                    delay = t0 + index * pace - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                self.frames_read += 1
                self._publish(Frame(index, time.monotonic(), to_bgr_uint8(image, self.spec.name)))
        finally:
            cap.release()

    def _run_live(self) -> None:
        index = 0
        attempt = 0
        cap: FrameReader | None = None
        while not self._stop.is_set():
            if cap is None:
                try:
                    cap = open_capture(self.spec, self.settings, self._note_once)
                    with self._lock:
                        self._last_activity = time.monotonic()
                except NoSuchCamera as e:
                    self._finish(str(e))
                    return
                except SourceError as e:
                    if not self._backoff(attempt, str(e)):
                        return
                    attempt += 1
                    continue
            ok, image = cap.read()
            if not ok or image is None:
                reason = getattr(cap, "failure", None) or f"{self.spec.name}: stream lost"
                cap.release()
                cap = None
                if not self._backoff(attempt, reason):
                    return
                attempt += 1
                continue
            attempt = 0
            self.frames_read += 1
            self._publish(Frame(index, time.monotonic(), to_bgr_uint8(image, self.spec.name)))
            index += 1
        if cap is not None:
            cap.release()

    def _backoff(self, attempt: int, reason: str) -> bool:
        """Wait before reopen ``attempt + 1``; False when out of retries (the source ends with an error)."""
        if attempt >= self.settings.retries:
            tries = f" after {attempt} reconnect attempt(s)" if attempt else ""
            self._finish(f"{reason}{tries}; giving up")
            return False
        delay = min(self.settings.backoff * (2**attempt), self.settings.backoff_max)
        self.reconnects += 1
        self._event(
            f"{reason}; reconnecting in {delay:.2f} s (attempt {attempt + 1}/{self.settings.retries})"
        )
        with self._lock:
            self._last_activity = time.monotonic() + delay  # waiting on purpose is not a stall
        return not self._stop.wait(delay)
