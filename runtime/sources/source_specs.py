"""Expanding ``edgecls run`` SOURCE arguments into concrete sources.

A SOURCE is an image file, a folder (walked recursively for images, hidden entries skipped), a glob
(``'photos/**/*.jpg'``, expanded here so quoting works on every shell), a video file, an rtsp/http(s)/tcp/...
URL, or a ``/dev/videoN`` device. ``--camera`` adds cameras: ``N`` (V4L2 index N, ``/dev/videoN``; on a
Raspberry Pi whose ``/dev/videoN`` belongs to libcamera it is read through Picamera2, see
:mod:`edgecls.runtime.sources.cameras`) or ``pi:N`` (Picamera2 camera N, always). Arguments that match nothing
become problems (reported as error records by the caller) instead of stopping the run.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.images.files import walk_images
from edgecls.runtime.terminal.redact import redact

SourceKind = Literal["image", "video", "camera", "stream"]

VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {
        ".mp4",
        ".avi",
        ".mkv",
        ".mov",
        ".webm",
        ".m4v",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".flv",
        ".wmv",
        ".gif",
        ".mjpeg",
        ".mjpg",
        ".h264",
        ".h265",
        ".hevc",
        ".3gp",
        ".ogv",
    }
)
STREAM_SCHEMES: tuple[str, ...] = (
    "rtsp",
    "rtsps",
    "rtmp",
    "rtmps",
    "http",
    "https",
    "udp",
    "tcp",
    "srt",
    "rtp",
)
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_GLOB_CHARS = re.compile(r"[*?\[]")
_DEV_VIDEO = re.compile(r"^/dev/video(\d+)$")
_CAMERA = re.compile(r"^(?:(?P<pi>pi:)?(?P<index>\d+)|/dev/video(?P<dev>\d+))$")
#: The prefix of a Picamera2 camera's target and name (``pi:0``).
PICAMERA_PREFIX = "pi:"


@dataclass(frozen=True)
class SourceSpec:
    """One input: ``target`` is what OpenCV opens (path, URL or camera index), ``name`` what output shows.

    A stream's ``name`` is its URL without credentials (:func:`~edgecls.runtime.terminal.redact.redact`); only
    ``target`` holds the password, and nothing shows ``target``."""

    kind: SourceKind
    target: str
    name: str

    @property
    def live(self) -> bool:
        """Cameras and network streams: read in real time, only the newest frame kept."""
        return self.kind in ("camera", "stream")

    @property
    def camera_index(self) -> int:
        return int(self.target.removeprefix(PICAMERA_PREFIX))

    @property
    def picamera(self) -> bool:
        """A camera read through Picamera2 (``--camera pi:N``) rather than V4L2."""
        return self.kind == "camera" and self.target.startswith(PICAMERA_PREFIX)


@dataclass(frozen=True)
class SourceProblem:
    """An argument that could not become a source (missing file, empty folder, glob without matches)."""

    name: str
    error: str


def is_video_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def camera_source(index: int) -> SourceSpec:
    """V4L2 camera ``index`` (``/dev/videoN``), shown as ``camera:N``."""
    return SourceSpec("camera", str(int(index)), f"camera:{int(index)}")


def picamera_source(index: int) -> SourceSpec:
    """Picamera2 camera ``index`` (the numbering of ``rpicam-hello --list-cameras``), shown as ``pi:N``."""
    return SourceSpec("camera", f"{PICAMERA_PREFIX}{int(index)}", f"{PICAMERA_PREFIX}{int(index)}")


def is_camera_spelling(text: str) -> bool:
    """``N``, ``/dev/videoN`` or ``pi:N``: what ``--camera`` takes (a stream URL or a video file is a source)."""
    return _CAMERA.match(text.strip()) is not None


def parse_camera(text: str | int) -> SourceSpec:
    """One ``--camera`` value: ``N``, ``/dev/videoN`` (V4L2) or ``pi:N`` (Picamera2); EdgeclsError otherwise."""
    m = _CAMERA.match(str(text).strip())
    if m is None:
        raise EdgeclsError(f"--camera {text}: expected N (V4L2 /dev/videoN), /dev/videoN or pi:N (Picamera2)")
    if m.group("pi"):
        return picamera_source(int(m.group("index")))
    return camera_source(int(m.group("index") or m.group("dev")))


def _file_source(path: Path, name: str) -> SourceSpec:
    # A file given explicitly is an image unless its suffix says video: an odd suffix still gets a decode
    # attempt, so a mislabelled image is classified and a non-image becomes a clear error row.
    return SourceSpec("video" if is_video_path(path) else "image", str(path), name)


def _expand_path(path: Path, name: str) -> tuple[list[SourceSpec], list[SourceProblem]]:
    if path.is_dir():
        images = walk_images(path, follow_links=False)
        if not images:
            return [], [SourceProblem(name, f"{name}: folder contains no images")]
        return [SourceSpec("image", str(p), str(p)) for p in images], []
    if path.is_file():
        return [_file_source(path, name)], []
    if path.exists():
        return [], [SourceProblem(name, f"{name}: not a regular file, folder or device")]
    return [], [SourceProblem(name, f"{name}: no such file or directory")]


def expand_one(arg: str) -> tuple[list[SourceSpec], list[SourceProblem]]:
    """Expand one SOURCE argument."""
    url = _URL.match(arg)
    if url:
        if url.group(1).lower() in STREAM_SCHEMES:
            return [SourceSpec("stream", arg, redact(arg))], []
        if url.group(1).lower() != "file":
            shown = redact(arg)
            return [], [SourceProblem(shown, f"{shown}: unsupported URL scheme {url.group(1)!r}")]
        arg = arg[len("file://") :]
    dev = _DEV_VIDEO.match(arg)
    if dev:
        if not Path(arg).exists():
            return [], [SourceProblem(arg, f"{arg}: no such camera device")]
        return [camera_source(int(dev.group(1)))], []
    path = Path(arg).expanduser()
    if path.exists() or not _GLOB_CHARS.search(arg):
        return _expand_path(path, arg)
    matches = sorted(glob.glob(os.path.expanduser(arg), recursive=True))
    if not matches:
        return [], [SourceProblem(arg, f"{arg}: no files match")]
    specs: list[SourceSpec] = []
    problems: list[SourceProblem] = []
    for m in matches:
        p = Path(m)
        if p.is_dir():
            specs.extend(SourceSpec("image", str(q), str(q)) for q in walk_images(p, follow_links=False))
        elif p.is_file():
            specs.append(_file_source(p, m))
        else:  # a pipe, socket, device or dangling link the pattern matched: named, never opened
            problems.append(SourceProblem(m, f"{m}: not a regular file or folder"))
    if not specs and not problems:
        problems.append(SourceProblem(arg, f"{arg}: matches contain no images or videos"))
    return specs, problems


def expand_sources(
    args: Sequence[str], cameras: Iterable[int | str] = ()
) -> tuple[list[SourceSpec], list[SourceProblem]]:
    """All SOURCE arguments plus ``--camera`` values (:func:`parse_camera`) -> (sources in order without
    duplicates, problems)."""
    specs: list[SourceSpec] = []
    problems: list[SourceProblem] = []
    for arg in args:
        s, p = expand_one(arg)
        specs.extend(s)
        problems.extend(p)
    specs.extend(parse_camera(c) for c in cameras)
    seen: set[tuple[str, str]] = set()
    unique: list[SourceSpec] = []
    for s in specs:
        key = (s.kind, os.path.realpath(s.target) if s.kind in ("image", "video") else s.target)
        if key not in seen:
            seen.add(key)
            unique.append(s)
    return unique, problems
