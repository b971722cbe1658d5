"""The images of the bench's end-to-end pass: a data folder's images (its held-out part), or synthetic JPEGs.

The folder walk itself is :func:`edgecls.runtime.images.files.labelled_images` (the one walk of the package);
what is the bench's own is which part of a folder it measures: a tree split into ``train/ val/ test/`` means
its held-out ``test/`` part.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from edgecls.runtime.atomic import atomic_write_bytes
from edgecls.runtime.bench.rows import BenchError
from edgecls.runtime.images.files import labelled_images

#: ``(path, class name or None)``: what the end-to-end pass and the agreement check read.
ImageItem = tuple[str, str | None]


def scan_images(data_dir: str | os.PathLike[str]) -> list[ImageItem]:
    """The images of ``data_dir`` (class = first-level sub-folder, loose images unlabelled); a tree with
    ``train/`` and ``test/`` means its ``test/`` part. Raises :class:`BenchError` when there are none."""
    root = Path(data_dir)
    if not root.is_dir():
        raise BenchError(f"{root}: no such data folder")
    if (root / "test").is_dir() and (root / "train").is_dir():
        root = root / "test"
    items = [(str(path), cls) for path, cls in labelled_images(root)]
    if not items:
        raise BenchError(f"{root}: no images found")
    return items


def synthetic_images(
    out_dir: str | os.PathLike[str], count: int = 32, size: tuple[int, int] = (480, 640), seed: int = 0
) -> list[ImageItem]:
    """Write ``count`` camera-sized ``size`` (h, w) JPEGs (smooth gradients + noise) for e2e timing without data."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items: list[ImageItem] = []
    for i in range(count):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        base = np.stack([xx / w * 255 * a, yy / h * 255 * b, (xx + yy) / (h + w) * 255 * c], axis=-1)
        img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = out / f"synthetic_{i:03d}.jpg"
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise BenchError("OpenCV could not encode a synthetic JPEG")
        atomic_write_bytes(path, buf.tobytes())
        items.append((str(path), None))
    return items


def bench_images(
    data_dir: str | os.PathLike[str] | None, e2e: bool, stack: contextlib.ExitStack
) -> tuple[list[ImageItem] | None, bool]:
    """(images for the end-to-end pass or None, whether they are synthetic); synthetic ones live in a temporary
    folder that ``stack`` removes."""
    if data_dir is not None:
        return scan_images(data_dir), False
    if e2e:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="edgecls-bench-images-"))
        return synthetic_images(tmp), True
    return None, False
