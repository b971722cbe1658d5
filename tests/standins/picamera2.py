"""A stand-in for Picamera2 (raspberrypi/picamera2) with the behaviour its manual and source document, for the calls
edgecls makes, producing frames from a real image file. Importable only where a test puts ``tests/standins`` on
``sys.path`` (or PYTHONPATH for a subprocess); nothing else in the suite sees it.

What it does as Picamera2 does (picamera2/picamera2.py, picamera2/job.py, picamera2/request.py):

- ``Picamera2(camera_num)`` looks the number up in the list of cameras: IndexError past its end. A camera is
  held by one instance until ``close()``: a second ``Picamera2(n)`` raises RuntimeError("Camera __init__ sequence
  did not complete.") as libcamera's acquire does.
- ``create_video_configuration(main=...)``: main defaults to XBGR8888 1280x720; a bad format or an odd size is a
  RuntimeError; raises RuntimeError("Camera not opened") after ``close()``.
- ``configure(config)``: RuntimeError("Camera must be stopped before configuring") while started.
- ``start()``: configures the preview configuration (XBGR8888 640x480) when nothing was configured.
- ``capture_array("main", wait=...)``: the next frame, at the camera's frame rate, as ``uint8[h, w, 3]`` for
  RGB888 laid out B, G, R (BGR888: R, G, B; XBGR8888: R, G, B, 255; XRGB8888: B, G, R, 255). Before ``start()``
  no frame ever comes: with ``wait=SECONDS`` it raises TimeoutError after SECONDS (what picamera2 >= 0.3.20
  does); with no limit it would block forever, so the stand-in raises RuntimeError saying so.
- ``cancel_all_and_flush()``, ``stop()`` (nothing when not started), ``close()`` (stops; nothing when closed).

Environment (set by the tests): EDGECLS_STANDIN_PICAMERA2_IMAGE (the image file every frame shows, resized to
the configured size), _CAMERAS (how many cameras, default 1), _FPS (default 30), _STALL_AFTER (each opened
camera delivers this many frames, then none: the cable pulled), _CALLS (a file each call is appended to).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import cv2
import numpy as np

_ENV = "EDGECLS_STANDIN_PICAMERA2_"
_FORMATS = ("RGB888", "BGR888", "XBGR8888", "XRGB8888")
_held: set[int] = set()
_held_lock = threading.Lock()


def _env(name: str, default: str = "") -> str:
    return os.environ.get(_ENV + name, default)


def _log(call: str) -> None:
    path = _env("CALLS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(call + "\n")


class Picamera2:
    def __init__(self, camera_num: int = 0) -> None:
        cameras = list(range(int(_env("CAMERAS", "1"))))
        self.camera_idx = cameras[camera_num]  # IndexError past the end, as global_camera_info()[camera_num]
        with _held_lock:
            if self.camera_idx in _held:
                raise RuntimeError("Camera __init__ sequence did not complete.")
            _held.add(self.camera_idx)
        self.is_open = True
        self.started = False
        self.camera_config: dict[str, Any] | None = None
        self._frames = 0
        self._next_at = 0.0
        _log(f"Picamera2({camera_num})")

    def _opened(self) -> None:
        if not self.is_open:
            raise RuntimeError("Camera not opened")

    def _configuration(self, use_case: str, default_size: tuple[int, int], main: dict | None) -> dict[str, Any]:
        self._opened()
        stream = {"format": "XBGR8888", "size": default_size, **(main or {})}
        if stream["format"] not in _FORMATS:
            raise RuntimeError(f"Bad format {stream['format']} in stream main")
        w, h = stream["size"]
        if w % 2 or h % 2:
            raise RuntimeError("width and height should be even")
        return {"use_case": use_case, "main": stream}

    def create_video_configuration(self, main: dict | None = None, **_: Any) -> dict[str, Any]:
        _log(f"create_video_configuration(main={main})")
        return self._configuration("video", (1280, 720), main)

    def create_preview_configuration(self, main: dict | None = None, **_: Any) -> dict[str, Any]:
        _log(f"create_preview_configuration(main={main})")
        return self._configuration("preview", (640, 480), main)

    def configure(self, camera_config: dict[str, Any] | None = None) -> None:
        _log("configure")
        self._opened()
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        self.camera_config = camera_config or self.create_preview_configuration()

    def start(self, config: dict[str, Any] | None = None, show_preview: bool = False) -> None:
        _log("start")
        self._opened()
        if config is not None or self.camera_config is None:
            self.configure(config)
        self.started = True
        self._next_at = time.monotonic()

    def capture_array(self, name: str = "main", wait: Any = None, signal_function: Any = None) -> np.ndarray:
        self._opened()
        if name != "main" or self.camera_config is None:
            raise RuntimeError(f"Stream {name!r} is not defined")
        limit = None if wait in (None, True) else float(wait)
        stall_after = _env("STALL_AFTER")
        if not self.started or (stall_after and self._frames >= int(stall_after)):
            if limit is None:
                raise RuntimeError("stand-in: no frame will come and no wait limit was given (Picamera2 would block)")
            time.sleep(limit)
            raise TimeoutError()
        # Frames come at the camera's rate: the call waits for the next one.
        delay = self._next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_at = max(self._next_at, time.monotonic()) + 1.0 / float(_env("FPS", "30"))
        self._frames += 1
        return self._frame()

    def _frame(self) -> np.ndarray:
        assert self.camera_config is not None
        stream = self.camera_config["main"]
        bgr = cv2.imread(_env("IMAGE"), cv2.IMREAD_COLOR)
        if bgr is None:
            raise RuntimeError("stand-in: EDGECLS_STANDIN_PICAMERA2_IMAGE is not a readable image")
        bgr = cv2.resize(bgr, tuple(stream["size"]), interpolation=cv2.INTER_AREA)
        if stream["format"] == "RGB888":  # bytes B, G, R: OpenCV's order
            return np.ascontiguousarray(bgr)
        if stream["format"] == "BGR888":  # bytes R, G, B
            return np.ascontiguousarray(bgr[:, :, ::-1])
        alpha = np.full(bgr.shape[:2] + (1,), 255, np.uint8)
        if stream["format"] == "XRGB8888":  # bytes B, G, R, A
            return np.concatenate([bgr, alpha], axis=2)
        return np.concatenate([bgr[:, :, ::-1], alpha], axis=2)  # XBGR8888: bytes R, G, B, A

    def cancel_all_and_flush(self) -> None:
        _log("cancel_all_and_flush")

    def stop(self) -> None:
        _log("stop")
        self.started = False

    def close(self) -> None:
        _log("close")
        if not self.is_open:
            return
        self.started = False  # Picamera2.close() stops the camera first
        self.is_open = False
        with _held_lock:
            _held.discard(self.camera_idx)
