"""Pixel outputs of ``edgecls run``: annotated files (``--save DIR``) and a window per source (``--show``).

- Both draw with :func:`edgecls.runtime.inference.annotate.annotate` (also what ``edgecls serve``'s live feed shows).
- :class:`SaveSink`: annotated images (``DIR/<name>``) and annotated videos (``DIR/<source>.avi``, MJPG),
  each published atomically.
- :class:`ShowSink`: an OpenCV window per source with label, score and FPS; refuses without a display.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from pathlib import Path

import cv2

from edgecls.runtime.atomic import atomic_path, atomic_write_bytes
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.inference.annotate import annotate
from edgecls.runtime.run.fps_meter import FpsMeter
from edgecls.runtime.sources.records import Record, RunSummary
from edgecls.runtime.sources.sinks import QuietSink


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "source"


class SaveSink(QuietSink):
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


def opencv_gui_backend(build_information: str | None = None) -> str:
    """The GUI backend OpenCV was built with (``GUI:`` line of its build information): ``NONE`` for
    opencv-python-headless, the base install's build (a board without a screen has no X libraries)."""
    info = cv2.getBuildInformation() if build_information is None else build_information
    for line in info.splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "GUI":
            return value.strip() or "NONE"
    return "NONE"


def display_available() -> str | None:
    """None when a window can be shown, else why not."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    if opencv_gui_backend() == "NONE":
        return (
            "this OpenCV is a headless build (opencv-python-headless, the base install): "
            "pip install 'edgecls[gui]' for windows"
        )
    return None


class ShowSink(QuietSink):
    """One OpenCV window per source with the top label, score and FPS; q or Esc stops the run."""

    def __init__(self, stop: threading.Event) -> None:
        why = display_available()
        if why is not None:
            raise EdgeclsError(
                f"--show needs a display and a GUI OpenCV: {why}; use --save DIR to write annotated output"
            )
        self.stop = stop
        self.fps = FpsMeter()
        self._windows: set[str] = set()

    def result(self, record: Record) -> None:
        if record.image is None:
            return
        fps = self.fps.tick(record.source, at=record.done)
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
