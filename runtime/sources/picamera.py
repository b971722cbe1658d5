"""Raspberry Pi cameras through Picamera2, the Pi's Python library over libcamera.

A Pi 5's CSI camera (Camera Module 3 and the others) is a libcamera device: ``cv2.VideoCapture(0)`` opens the
CSI receiver's ``/dev/video0`` but reads nothing (opencv/opencv#25072; native libcamera support in OpenCV is
opencv/opencv#21653, still open), and pip's OpenCV wheels have no GStreamer for a ``libcamerasrc`` pipeline
(opencv/opencv-python#524). Picamera2 reads it; this module wraps it in the two calls the capture thread makes
of a ``cv2.VideoCapture`` (``read()`` -> ``(ok, image)``, ``release()``), so reconnects, back-off and the
newest-frame slot of :mod:`edgecls.runtime.sources.live_capture` apply unchanged.

The calls made, as the Picamera2 manual and source describe them (raspberrypi/picamera2 ``picamera2.py``):
``Picamera2(camera_num)`` (IndexError for a number libcamera does not list, RuntimeError when the camera is
busy), ``create_video_configuration(main={"format": "RGB888", "size": (w, h)})``, ``configure``, ``start``,
``capture_array("main", wait=SECONDS)`` (a TimeoutError after SECONDS without a frame, picamera2 >= 0.3.20;
older versions wait without a limit), ``cancel_all_and_flush`` (after a timeout, so that ``stop`` is not queued
behind the hung capture), ``stop``, ``close``.

Colour order: Picamera2's ``"RGB888"`` is laid out B, G, R in memory (the manual's appendix of image formats
gives RGB888's pixels as [B, G, R]; in its source, PIL images of RGB888 use mode ``BGR`` and the encoders map it
to FFmpeg's ``bgr24`` and V4L2's ``BGR24``), which is OpenCV's BGR, the order every edgecls frame has. So the
array goes to preprocessing as it is, and the contract's colour handling converts it like any decoded file.

This path has been tested against a stand-in module with the documented behaviour (tests/standins/picamera2.py),
never against a real camera.
"""

from __future__ import annotations

import contextlib
import functools
from types import ModuleType
from typing import Any

import numpy as np

from edgecls.runtime.errors import NoSuchCamera, SourceError

#: The main stream's size: enough for any classifier input (the preprocessing resizes), cheap to copy per frame.
PICAMERA_SIZE = (640, 480)
#: Picamera2's format whose bytes are B, G, R per pixel (OpenCV's order).
PICAMERA_FORMAT = "RGB888"
INSTALL_HINT = (
    "install Debian's python3-picamera2 (sudo apt install python3-picamera2) and make the venv with "
    "--system-site-packages so it sees it; or stream with rpicam-vid to tcp://127.0.0.1:8888 (docs/run.md)"
)


@functools.cache
def picamera2_module() -> ModuleType | str:
    """The ``picamera2`` module, or why it does not import (cached: one import attempt per process)."""
    try:
        import picamera2
    except Exception as e:  # ImportError, or libcamera's own bindings failing to load
        return f"{type(e).__name__}: {e}".splitlines()[0]
    return picamera2


class PicameraReader:
    """A started Picamera2 camera read like a ``cv2.VideoCapture``: ``read()`` -> ``(ok, uint8[H, W, 3] BGR)``."""

    def __init__(self, camera: Any, name: str, timeout: float) -> None:
        self._camera = camera
        self._name = name
        self._timeout = timeout
        self._hung = False
        self.failure: str | None = None  # why the last read failed (shown in the reconnect notice)

    def read(self) -> tuple[bool, np.ndarray | None]:
        try:
            image = self._camera.capture_array("main", wait=self._timeout)
        except Exception as e:  # TimeoutError (no frame in time), RuntimeError (camera gone): reopen
            self._hung = isinstance(e, TimeoutError)
            self.failure = f"{self._name}: no frame ({type(e).__name__}: {e})".splitlines()[0]
            return False, None
        return True, image

    def release(self) -> None:
        if self._hung and hasattr(self._camera, "cancel_all_and_flush"):
            with contextlib.suppress(Exception):
                self._camera.cancel_all_and_flush()
        for step in (self._camera.stop, self._camera.close):
            with contextlib.suppress(Exception):  # closing a camera that failed must not hide why it failed
                step()


def open_picamera(index: int, name: str, timeout: float, size: tuple[int, int] = PICAMERA_SIZE) -> PicameraReader:
    """Open, configure and start Picamera2 camera ``index``; NoSuchCamera (no retry) or SourceError (retry)."""
    module = picamera2_module()
    if isinstance(module, str):
        raise NoSuchCamera(f"{name}: picamera2 does not import here ({module}); {INSTALL_HINT}")
    try:
        camera = module.Picamera2(index)
    except IndexError as e:  # Picamera2 looks the number up in libcamera's list of cameras
        raise NoSuchCamera(f"{name}: no such camera (libcamera lists no camera {index})") from e
    except Exception as e:  # busy (another process holds it), or libcamera failing to start: worth a retry
        raise SourceError(f"{name}: cannot open the camera ({type(e).__name__}: {e})".splitlines()[0]) from e
    reader = PicameraReader(camera, name, timeout)
    try:
        camera.configure(camera.create_video_configuration(main={"format": PICAMERA_FORMAT, "size": size}))
        camera.start()
    except Exception as e:
        reader.release()
        raise SourceError(f"{name}: cannot start the camera ({type(e).__name__}: {e})".splitlines()[0]) from e
    return reader
