"""A small real-photo classification task whose test images come from regions training never saw.

The photos are scikit-image's sample photos (inside the scikit-image wheel, no download), loaded by
``benchmarks/quantization/photo_data.photos``. The class is the photo a crop comes from. Each photo is split
by columns: training and validation crops lie entirely in the left ``TRAIN_WIDTH`` of the width, test crops
entirely in the rest, so a test crop shares no pixel with any training crop and a model must recognise the
photo's content (texture, colour, objects), not remember pixels. Crops vary in size (30-90% of the region's
shorter side), aspect (3:4-4:3) and orientation (random horizontal flip), and are written as PNG into an
ImageFolder tree with explicit ``train/ val/ test/`` folders, which ``edgecls train`` uses as they are.

Classes: the sample photos whose left and right parts show the same kind of content (textures, scenes and
single centred objects); photos whose two sides show different things (astronaut, camera, clock, retina, rocket) and the
near-duplicates of others (text ~ page) are left out.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quantization"))
from photo_data import PHOTOS, photos  # noqa: E402

#: Left out: photos whose two sides show different things, and text (a near-duplicate of page).
EXCLUDED = ("astronaut", "camera", "clock", "retina", "rocket", "text")
CLASSES = tuple(name for name in PHOTOS if name not in EXCLUDED)
TRAIN_WIDTH = 0.6  # training/validation columns [0, 0.6); test columns [0.6, 1.0)


def region_crops(image: np.ndarray, x0: int, x1: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` random crops lying entirely inside columns [x0, x1) of ``image`` (uint8[H, W, 3] BGR)."""
    h = image.shape[0]
    region_w = x1 - x0
    crops = []
    for _ in range(n):
        side = rng.uniform(0.3, 0.9) * min(h, region_w)
        aspect = rng.uniform(0.75, 4 / 3)
        ch, cw = int(min(h, side * aspect)), int(min(region_w, side / aspect))
        y, x = int(rng.integers(0, h - ch + 1)), x0 + int(rng.integers(0, region_w - cw + 1))
        crop = image[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crops.append(np.ascontiguousarray(crop))
    return crops


def write_task(
    out: Path, train: int = 40, val: int = 10, test: int = 30, seed: int = 0, classes: int = len(CLASSES)
) -> dict:
    """Write ``out/{train,val,test}/<photo>/*.png`` for the first ``classes`` photos; -> a description for the
    results file."""
    rng = np.random.default_rng(seed)
    ims = photos()
    names = CLASSES[:classes]
    for name in names:
        im = ims[name]
        split_x = int(TRAIN_WIDTH * im.shape[1])
        parts = {
            "train": region_crops(im, 0, split_x, train, rng),
            "val": region_crops(im, 0, split_x, val, rng),
            "test": region_crops(im, split_x, im.shape[1], test, rng),
        }
        for split, crops in parts.items():
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, crop in enumerate(crops):
                cv2.imwrite(str(folder / f"{i:03d}.png"), crop)
    return {
        "source": "scikit-image sample photos (skimage.data), class = the photo a crop comes from",
        "classes": list(names),
        "per_class": {"train": train, "val": val, "test": test},
        "regions": f"train/val crops inside columns [0, {TRAIN_WIDTH}) of each photo, test crops inside "
        f"[{TRAIN_WIDTH}, 1.0): no test pixel was ever seen in training",
        "seed": seed,
    }


if __name__ == "__main__":
    print(write_task(Path(sys.argv[1])))
