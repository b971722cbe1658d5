"""Opening a camera: V4L2 through OpenCV, or a Raspberry Pi camera through Picamera2.

``--camera pi:N`` is always Picamera2 camera N. ``--camera N`` is V4L2's ``/dev/videoN`` (a USB camera), except
on a board where that node is not a camera OpenCV can read and picamera2 imports: then it is Picamera2 camera N,
said once on stderr. A node is taken as the Pi's when its V4L2 name (``/sys/class/video4linux/videoN/name``) is
one of the Pi camera pipeline's: ``rp1-cfe-*`` (the Pi 5's CSI receiver, ``/dev/video0``-``7``:
raspberrypi/rpicam-apps#723), ``pispbe-*`` (the Pi 5's ISP), ``unicam-*`` (earlier Pis' CSI receiver:
raspberrypi/rpicam-apps#561), ``bcm2835-isp*``. OpenCV opens those nodes but reads nothing (opencv/opencv#25072).

Why both spellings: ``edgecls run --camera 0`` is the command the docs, the bundle's service unit and ``serve``
give, and on a Pi 5 with a Camera Module it must read that camera; the decision is made from what the node is,
never from a failed read (a busy USB camera must stay a USB camera and be retried). ``pi:N`` says it outright,
for scripts, and for a board where a USB camera holds ``/dev/video0`` beside a CSI camera.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edgecls.runtime.errors import NoSuchCamera, SourceError
from edgecls.runtime.sources.picamera import INSTALL_HINT, open_picamera, picamera2_module
from edgecls.runtime.sources.source_specs import SourceSpec

#: V4L2 node names of the Raspberry Pi camera pipeline (libcamera's), by prefix.
LIBCAMERA_NODE_PREFIXES: tuple[str, ...] = ("rp1-cfe", "pispbe", "unicam", "bcm2835-isp")

NoteCallback = Callable[[str], None]


class FrameReader(Protocol):
    """What the capture thread calls: ``cv2.VideoCapture`` and :class:`~.picamera.PicameraReader` both fit."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...


def v4l2_node_problem(index: int, dev: Path = Path("/dev"), sysfs: Path = Path("/sys/class/video4linux")) -> str | None:
    """Why ``/dev/videoN`` is no camera OpenCV can read (missing, or a node of the Pi's libcamera pipeline), or None."""
    node = dev / f"video{index}"
    if not node.exists():
        return f"{node} does not exist"
    try:
        name = (sysfs / f"video{index}" / "name").read_text(errors="replace").strip()
    except OSError:
        return None
    if name.startswith(LIBCAMERA_NODE_PREFIXES):
        return f"{node} is {name!r}, a node of the Raspberry Pi camera pipeline (libcamera), not a V4L2 camera"
    return None


def open_camera(spec: SourceSpec, read_timeout: float, note: NoteCallback | None = None) -> FrameReader:
    """Open camera ``spec`` (see the module for V4L2 vs Picamera2); NoSuchCamera when retrying cannot help."""
    index = spec.camera_index
    if spec.picamera:
        return open_picamera(index, spec.name, read_timeout)
    if sys.platform.startswith("linux"):
        problem = v4l2_node_problem(index)
        if problem is not None:
            module = picamera2_module()
            if isinstance(module, str):
                hint = f"; for a Raspberry Pi camera: {INSTALL_HINT}" if "camera pipeline" in problem else ""
                raise NoSuchCamera(f"{spec.name}: no such camera ({problem}){hint}")
            if note is not None:
                note(f"{spec.name}: {problem}; reading Picamera2 camera {index} instead (--camera pi:{index})")
            return open_picamera(index, spec.name, read_timeout)
    apis = (cv2.CAP_V4L2, cv2.CAP_ANY) if sys.platform.startswith("linux") else (cv2.CAP_ANY,)
    for api in apis:
        cap = cv2.VideoCapture(index, api)
        if cap.isOpened():
            return cap
        cap.release()
    raise SourceError(f"{spec.name}: cannot open camera (busy, no permission or not a capture device)")
