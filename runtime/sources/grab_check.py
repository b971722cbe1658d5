"""``edgecls selftest --camera SPEC``: grab N frames from a camera, stream or video file and say how fast and how big.

The frames come through the same capture thread ``edgecls run`` uses
(:class:`~edgecls.runtime.sources.live_capture.FrameSource`: V4L2, Picamera2, FFmpeg), without a model, so a
camera that works here works in ``run`` and ``serve``. The rate is measured from the frames' own indices and
capture times (first to last frame read), so it is the source's rate, not how fast this loop took them. A camera
or stream is measured after a warm-up of :data:`LIVE_WARMUP_S`: a network stream's first frames arrive in one
burst (what the sender produced while FFmpeg was probing it: 1,500 "fps" for a 25 fps H.264 stream here), and a
camera's first frames come while its exposure settles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.sources.live_capture import CaptureSettings, Frame, FrameSource
from edgecls.runtime.sources.source_specs import SourceSpec, expand_one, is_camera_spelling, parse_camera

LIVE_WARMUP_S = 0.5


@dataclass(frozen=True)
class GrabReport:
    """What one grab did: frames read, their size, the rate they came at; ``error`` when it fell short."""

    source: str
    frames: int
    width: int
    height: int
    seconds: float  # first frame to last
    fps: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        got = f"{self.frames} frame(s) of {self.width}x{self.height} in {self.seconds:.2f} s ({self.fps:.1f} fps)"
        return f"{self.source}: {got}" + (f"; {self.error}" if self.error else "")


def grab_source(text: str) -> SourceSpec:
    """``--camera`` spelling (N, pi:N, /dev/videoN), a stream URL or a video file -> one frame source."""
    if is_camera_spelling(text):
        return parse_camera(text)
    specs, problems = expand_one(text)
    if problems:
        raise EdgeclsError(problems[0].error)
    if len(specs) != 1 or specs[0].kind == "image":
        raise EdgeclsError(f"--camera {text}: not a camera, stream URL or video file")
    return specs[0]


def grab_frames(
    spec: SourceSpec,
    frames: int,
    settings: CaptureSettings | None = None,
    on_event: Callable[[str, str], None] | None = None,
) -> GrabReport:
    """Read ``frames`` frames from ``spec`` (no reconnects: a selftest reports a failure, it does not hide it)."""
    if frames < 1:
        raise EdgeclsError(f"--frames must be >= 1, got {frames}")
    src = FrameSource(spec, settings or CaptureSettings(retries=0), on_event=on_event).start()
    first: Frame | None = None
    last: Frame | None = None
    warm_until: float | None = None if spec.live else 0.0
    try:
        while not (first and last and last.index - first.index + 1 >= frames):
            taken = src.take(frames)
            if taken and warm_until is None:
                warm_until = taken[0].captured + LIVE_WARMUP_S
            taken = [f for f in taken if warm_until is not None and f.captured >= warm_until]
            if taken:
                first, last = first or taken[0], taken[-1]
                continue
            if src.finished or src.check_stalled():
                break
            src.wakeup.wait(0.05)
            src.wakeup.clear()
    finally:
        src.stop(join_timeout=1.0)
    if first is None or last is None:
        return GrabReport(spec.name, 0, 0, 0, 0.0, 0.0, src.error or f"{spec.name}: no frames")
    count = last.index - first.index + 1
    seconds = last.captured - first.captured
    height, width = first.image.shape[:2]
    error = None if count >= frames else (src.error or f"{spec.name}: ended after {count} of {frames} frame(s)")
    fps = (count - 1) / seconds if count > 1 and seconds > 0 else 0.0
    return GrabReport(spec.name, count, width, height, seconds, fps, error)
