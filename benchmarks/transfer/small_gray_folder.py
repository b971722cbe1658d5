"""The small-folder case where validation sat at chance: 200 grayscale 64 px crops of two scikit-image photos.

    python benchmarks/transfer/small_gray_folder.py /tmp/gray64
    edgecls train /tmp/gray64 --input-size 64 --batchnorm train --out runs/gray-ema  # PyTorch's running statistics
    edgecls train /tmp/gray64 --input-size 64 --out runs/gray                        # re-estimated (the default)

MobileNetV2, 140 training images, batch 64: 3 steps per epoch. With `--batchnorm train` validation stays at
exactly 50% for the first ~20 epochs while training accuracy passes 95% (see edgecls/training/batchnorm.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import skimage.data

CLASSES = ("camera", "coins")  # grayscale sample photos


def write_folder(out: Path, per_class: int = 100, size: int = 64, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        image = getattr(skimage.data, name)()  # uint8[H, W]
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        h, w = image.shape[:2]
        for i in range(per_class):
            side = int(rng.uniform(0.3, 0.6) * min(h, w))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = cv2.resize(image[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(folder / f"{i:03d}.png"), crop)


if __name__ == "__main__":
    write_folder(Path(sys.argv[1]))
