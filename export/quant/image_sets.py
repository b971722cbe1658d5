"""Images for int8 calibration and for measuring accuracy, all fed through the runtime's preprocessing.

DATA arguments (``--calib``, ``--val``) are a folder or a built-in set:
- ``builtin:NAME``: calibration uses its train split, validation its val split (labelled).
- a folder whose sub-folders are named after the model's labels: labelled (top-1 accuracy is measured);
- any other folder: every image under it, unlabelled (int8 is then judged by agreement with fp32).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecls.export.run_data import DataRef, evenly_spaced, load_images, load_splits
from edgecls.runtime.contract import ModelContract
from edgecls.runtime.decode import is_image_path
from edgecls.runtime.errors import DataError, ImageDecodeError
from edgecls.runtime.preprocess import decode_for_contract, preprocess_batch

#: Below this many calibration images activation ranges get noisy (ORT and NNCF docs suggest a few hundred).
MIN_CALIBRATION_IMAGES = 300


@dataclass
class ImageList:
    """Decoded images of one role; ``labels`` are contract label indices or None (unlabelled)."""

    source: str
    images: list[np.ndarray]  # each uint8[H, W, 3] BGR
    labels: np.ndarray | None  # int64[N]
    skipped: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def inputs(self, contract: ModelContract) -> np.ndarray:
        """float32[N, 3, h, w] through ``preprocess_batch``."""
        return preprocess_batch(self.images, contract)

    def inputs_slice(self, contract: ModelContract, start: int, stop: int) -> np.ndarray:
        """float32[stop - start, 3, h, w] for images[start:stop] (calibration batches)."""
        return preprocess_batch(self.images[start:stop], contract)


def _folder_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and is_image_path(p))


def _decode_files(
    files: Sequence[Path], labels: Sequence[int] | None, source: str, contract: ModelContract
) -> ImageList:
    images, kept, skipped = [], [], []
    for i, path in enumerate(files):
        try:
            images.append(decode_for_contract(path, contract))
        except ImageDecodeError as e:
            skipped.append(str(e))
            continue
        kept.append(i)
    lab = None if labels is None else np.asarray([labels[i] for i in kept], dtype=np.int64)
    return ImageList(source, images, lab, skipped)


def _require_images(images: ImageList, role: str) -> ImageList:
    if not images.images:
        extra = f" ({len(images.skipped)} unreadable, e.g. {images.skipped[0]})" if images.skipped else ""
        raise DataError(f"{images.source}: no readable image for {role}{extra}")
    return images


def _subsample(images: ImageList, limit: int | None) -> ImageList:
    if limit is None or len(images) <= limit:
        return images
    idx = evenly_spaced(len(images), limit)
    labels = None if images.labels is None else images.labels[idx]
    return ImageList(images.source, [images.images[i] for i in idx], labels, images.skipped)


def _split_images(ref: DataRef, split: str, contract: ModelContract, limit: int | None) -> ImageList:
    splits = load_splits(ref)
    imageset = getattr(splits, split)
    loaded = load_images(imageset, contract, evenly_spaced(len(imageset), limit) if limit else None)
    labels = _map_labels([imageset.classes[i] for i in loaded.labels], contract)
    return ImageList(f"{ref.spec} ({split} split)", loaded.images, labels, loaded.skipped)


def _map_labels(names: Sequence[str], contract: ModelContract) -> np.ndarray | None:
    """Class names -> contract label indices; None when the names are not the model's labels."""
    index = {name: i for i, name in enumerate(contract.labels)}
    if not names or any(n not in index for n in names):
        return None
    return np.asarray([index[n] for n in names], dtype=np.int64)


def load_role_images(
    spec: str | os.PathLike[str],
    contract: ModelContract,
    role: str,
    limit: int | None = None,
    builtin_split: str = "train",
) -> ImageList:
    """Images for ``role`` ("calibration" or "validation") from a DATA argument, at most ``limit`` of them."""
    text = str(spec)
    if text.startswith("builtin:"):
        return _require_images(_split_images(DataRef(text), builtin_split, contract, limit), role)
    root = Path(text)
    if root.is_file() and is_image_path(root):
        return _require_images(_decode_files([root], None, text, contract), role)
    if not root.is_dir():
        raise DataError(f"{text}: no such folder or built-in set for {role}")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and _folder_files(d))
    names = [d.name for d in class_dirs]
    labelled = bool(class_dirs) and all(n in contract.labels for n in names)
    if labelled:
        files, labels = [], []
        for d in class_dirs:
            fs = _folder_files(d)
            files += fs
            labels += [contract.labels.index(d.name)] * len(fs)
        idx = evenly_spaced(len(files), limit) if limit else range(len(files))
        result = _decode_files([files[i] for i in idx], [labels[i] for i in idx], text, contract)
    else:
        files = _folder_files(root)
        idx = evenly_spaced(len(files), limit) if limit else range(len(files))
        result = _decode_files([files[i] for i in idx], None, text, contract)
    return _require_images(_subsample(result, limit), role)


def images_from_run(ref: DataRef, split: str, contract: ModelContract, limit: int | None) -> ImageList:
    """A split of the run's own data (train for calibration, val for the accuracy budget)."""
    return _require_images(_split_images(ref, split, contract, limit), f"{split} images")


#: The seed of every disjoint split edgecls makes (calibration/validation, search/held-out): same data, same split.
SPLIT_SEED = 0
#: Share of a single unlabelled image folder that becomes validation images when no --val is given.
VALIDATION_SHARE = 0.5


def split_disjoint(
    images: ImageList, second_fraction: float, names: tuple[str, str], seed: int = SPLIT_SEED
) -> tuple[ImageList, ImageList]:
    """A seeded random split of ``images`` into two disjoint parts (no image in both), the second holding
    ``second_fraction`` of them (at least one each when there are two or more images)."""
    n = len(images)
    if n < 2:
        raise DataError(f"{images.source}: {n} image(s) cannot be split into {names[0]} and {names[1]} parts")
    order = np.random.default_rng(seed).permutation(n)
    n_second = min(n - 1, max(1, round(n * second_fraction)))
    parts = []
    for name, idx in zip(names, (np.sort(order[n_second:]), np.sort(order[:n_second])), strict=True):
        labels = None if images.labels is None else images.labels[idx]
        source = f"{images.source} ({name} part: {len(idx)} of {n}, seeded split {seed})"
        parts.append(ImageList(source, [images.images[i] for i in idx], labels, images.skipped))
    return parts[0], parts[1]
