"""Real photo crops from scikit-image's sample photos (shipped in the scikit-image wheel, no download).

Used by the quantization benchmarks in two ways: as a 16-class "which photo is this crop from" task to train a
MobileNetV2 outside edgecls's training loop, and as realistic unlabelled inputs on which int8 must agree
with fp32. Crops are ``uint8[H, W, 3]`` BGR of varying size and aspect, like camera frames.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

#: Distinct sample photos (``cat`` is the same picture as ``chelsea`` and is left out).
PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)

#: The quantization studies' crop sets: one seed per role, so no step of a method sees the crops it is graded on.
SEEDS = {"calibration": 11, "validation": 12, "test": 13}


@functools.lru_cache(maxsize=1)
def photos() -> dict[str, np.ndarray]:
    """name -> uint8[H, W, 3] BGR."""
    import skimage.data

    out = {}
    for name in PHOTOS:
        im = np.asarray(getattr(skimage.data, name)())
        if im.ndim == 2:
            im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)
        else:
            im = cv2.cvtColor(im[:, :, :3], cv2.COLOR_RGB2BGR)
        out[name] = np.ascontiguousarray(im.astype(np.uint8))
    return out


def random_crops(
    n: int, seed: int, min_frac: float = 0.25, max_frac: float = 0.8
) -> tuple[list[np.ndarray], np.ndarray]:
    """n random crops (side = frac x the shorter side, aspect 3:4..4:3, random flip) and their labels."""
    rng = np.random.default_rng(seed)
    ims = photos()
    crops, labels = [], []
    for i in range(n):
        label = i % len(PHOTOS)
        im = ims[PHOTOS[label]]
        h, w = im.shape[:2]
        side = rng.uniform(min_frac, max_frac) * min(h, w)
        aspect = rng.uniform(0.75, 4 / 3)
        ch, cw = int(min(h, side * aspect)), int(min(w, side / aspect))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = im[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crops.append(np.ascontiguousarray(crop))
        labels.append(label)
    return crops, np.asarray(labels, dtype=np.int64)


def write_crops(folder: Path, n: int, seed: int, labelled: bool) -> Path:
    """Photo crops as real PNG files (class sub-folders when labelled), so the CLI data path is exercised."""
    crops, labels = random_crops(n, seed)
    for i, (crop, label) in enumerate(zip(crops, labels, strict=True)):
        sub = folder / PHOTOS[label] if labelled else folder
        sub.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(sub / f"crop_{i:04d}.png"), crop)
    return folder
