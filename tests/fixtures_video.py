"""Real video files on disk for the frame-source, runner and run-command tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: int = 30, fps: float = 30.0, size: int = 64) -> Path:
    """An MJPG .avi whose frame i has brightness 8*i (so the frame can be recognised)."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    assert w.isOpened()
    for i in range(frames):
        w.write(np.full((size, size, 3), (8 * i) % 256, dtype=np.uint8))
    w.release()
    return path
