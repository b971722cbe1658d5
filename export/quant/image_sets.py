"""Images for int8 calibration and for measuring accuracy, all fed through the runtime's preprocessing.

DATA arguments (``--calib``, ``--val``) are a folder or a built-in set:
- ``builtin:NAME``: calibration uses its train split, validation its val split (labelled).
- a folder whose sub-folders are named after the model's labels: labelled (top-1 accuracy is measured);
- any other folder: every image under it, unlabelled (int8 is then judged by agreement with fp32).

``load_int8_images`` turns ``--calib``/``--val`` (or a run's own splits) into the two image sets the search
needs, for ``quantize`` and ``export --quantize`` alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecls.export.quant.options import Int8Images
from edgecls.export.run_data import DataRef, evenly_spaced, load_images, load_splits
from edgecls.runtime.contract import ModelContract
from edgecls.runtime.decode import is_image_path
from edgecls.runtime.errors import DataError, ImageDecodeError
from edgecls.runtime.image_files import class_folders, walk_images
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
    class_files = {d.name: walk_images(d) for d in class_folders(root)}
    class_files = {name: fs for name, fs in class_files.items() if fs}
    labelled = bool(class_files) and all(n in contract.labels for n in class_files)
    if labelled:
        files, labels = [], []
        for name, fs in class_files.items():
            files += fs
            labels += [contract.labels.index(name)] * len(fs)
        idx = evenly_spaced(len(files), limit) if limit else range(len(files))
        result = _decode_files([files[i] for i in idx], [labels[i] for i in idx], text, contract)
    else:
        files = walk_images(root)
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
    ``second_fraction`` of them (at least one each when there are two or more images). Labelled images are split
    class by class (stratified), so both parts see every class in the same proportion."""
    n = len(images)
    if n < 2:
        raise DataError(f"{images.source}: {n} image(s) cannot be split into {names[0]} and {names[1]} parts")
    order = np.random.default_rng(seed).permutation(n)
    n_second = min(n - 1, max(1, round(n * second_fraction)))
    if images.labels is None:
        second = order[:n_second]
    else:
        # Stable sort of the shuffled order by label: each class's images stay shuffled, classes contiguous;
        # then every k-th position goes to the second part, so each class gives it its share (+-1 image).
        by_class = order[np.argsort(images.labels[order], kind="stable")]
        picks = np.floor(np.arange(n_second) * n / n_second + (n / n_second) / 2).astype(int)
        second = by_class[np.minimum(picks, n - 1)]
    mask = np.zeros(n, bool)
    mask[second] = True
    parts = []
    for name, idx in zip(names, (np.flatnonzero(~mask), np.flatnonzero(mask)), strict=True):
        labels = None if images.labels is None else images.labels[idx]
        source = f"{images.source} ({name} part: {len(idx)} of {n}, seeded split {seed})"
        parts.append(ImageList(source, [images.images[i] for i in idx], labels, images.skipped))
    return parts[0], parts[1]


def load_int8_images(
    sources: Int8Images,
    contract: ModelContract,
    ref: DataRef | None = None,
    origin: str = "the model",
    log: Callable[[str], None] = print,
) -> tuple[ImageList, ImageList]:
    """(calibration, validation) images for ``quantize_model``, loaded up front so bad data fails early.

    ``ref`` is the run's own data (an export of a trained run): it fills in what ``sources`` leaves out. A model
    without run data and one image folder (no ``val``) gets a seeded disjoint split of that folder, so no image
    is graded that was calibrated on; a built-in ``calib`` set without ``val`` uses the set's val split.
    """
    calib, val = sources.calib, sources.val
    if ref is None and val is None and calib is not None and not calib.startswith("builtin:"):
        both = load_role_images(calib, contract, "calibration", sources.calib_images + sources.val_images)
        calibration, validation = split_disjoint(both, VALIDATION_SHARE, ("calibration", "validation"))
        log(
            f"no --val: {calib} split (seeded, disjoint) into {len(calibration)} calibration and "
            f"{len(validation)} validation images; pass --val for a separate held-out set"
        )
        return calibration, validation

    def load(spec: str | None, split: str, role: str, limit: int) -> ImageList:
        if spec is not None:
            return load_role_images(spec, contract, role, limit, builtin_split=split)
        if ref is None:
            raise DataError(f"{origin}: cannot tell which data the model was trained on; pass --calib/--val")
        return images_from_run(ref, split, contract, limit)

    calibration = load(calib, "train", "calibration", sources.calib_images)
    validation = load(val if val is not None or ref is not None else calib, "val", "validation", sources.val_images)
    return calibration, validation
