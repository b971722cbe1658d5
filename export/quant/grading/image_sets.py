"""Images for int8 calibration and for measuring accuracy, all fed through the runtime's preprocessing.

DATA arguments (``--calib``, ``--val``) are a folder or a built-in set:
- ``builtin:NAME``: calibration uses its train split, validation its val split (labelled).
- a folder whose sub-folders are named after the model's labels: labelled (top-1 accuracy is measured);
- any other folder: every image under it, unlabelled (int8 is then judged by agreement with fp32).

``load_int8_images`` turns ``--calib``/``--val`` (or a run's own splits) into the two image sets the search
needs, for ``quantize`` and ``export --quantize`` alike. The flow is one way: a DATA argument becomes an
``ImageSet`` (a folder read by ``runtime/images/files``, or a split of a built-in set or of the run's data from
``export/run_data``), then one loop samples, decodes and labels it (class names -> the contract's label indices
through ``runtime/contract/class_labels``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecls.data.imageset import FileImageSet, ImageSet
from edgecls.export.quant.options import Int8Images
from edgecls.export.run_data import DataRef, load_splits
from edgecls.runtime.contract.class_labels import UnknownClassesError, label_indices
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import DataError, ImageDecodeError
from edgecls.runtime.images.decode import is_image_path
from edgecls.runtime.images.files import read_class_tree, walk_images
from edgecls.runtime.inference.preprocess import decode_floor, preprocess_batch

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


def evenly_spaced(n_total: int, n: int) -> list[int]:
    """``n`` indices spread over ``range(n_total)`` (deterministic; covers every class of a sorted set)."""
    if n_total <= n:
        return list(range(n_total))
    return [int(i) for i in np.linspace(0, n_total - 1, n).round().astype(int)]


def _contract_labels(names: Sequence[str], contract: ModelContract, source: str) -> np.ndarray | None:
    """int64[N] contract label indices of the images' class names; None (unlabelled) when there are none or one
    is not a label of the model."""
    if not names:
        return None
    try:
        return label_indices(names, contract.labels, source)
    except UnknownClassesError:
        return None


def _decode(imageset: ImageSet, source: str, contract: ModelContract, limit: int | None) -> ImageList:
    """At most ``limit`` images of ``imageset`` (evenly spaced), decoded as the runtime would (large JPEGs at
    reduced scale); unreadable ones are skipped and recorded. A set without classes is unlabelled."""
    labelled = bool(imageset.classes)
    floor = decode_floor(contract)
    images, names, skipped = [], [], []
    for i in evenly_spaced(len(imageset), limit) if limit else range(len(imageset)):
        try:
            images.append(imageset.load(i, floor))
        except ImageDecodeError as e:
            skipped.append(str(e))
            continue
        if labelled:
            names.append(imageset.classes[imageset.label(i)])
    return ImageList(source, images, _contract_labels(names, contract, source) if labelled else None, skipped)


def _folder_set(root: Path, contract: ModelContract) -> FileImageSet:
    """The folder's images: its class folders' when every non-empty class folder is a label of the model
    (labelled with the contract's indices), else every image under it, unlabelled (top-1 cannot be measured)."""
    images = read_class_tree(root).images()  # empty class folders give none
    try:
        targets = label_indices([name for _, name in images], contract.labels, str(root)).tolist()
    except UnknownClassesError:
        images = []
    if images:
        return FileImageSet(tuple(contract.labels), [path for path, _ in images], targets)
    return _unlabelled(walk_images(root))


def _unlabelled(files: list[Path]) -> FileImageSet:
    return FileImageSet((), files, [-1] * len(files))  # no classes: label() is never asked


def _require_images(images: ImageList, role: str) -> ImageList:
    if not images.images:
        extra = f" ({len(images.skipped)} unreadable, e.g. {images.skipped[0]})" if images.skipped else ""
        raise DataError(f"{images.source}: no readable image for {role}{extra}")
    return images


def _split_images(ref: DataRef, split: str, contract: ModelContract, limit: int | None) -> ImageList:
    imageset = getattr(load_splits(ref), split)
    return _decode(imageset, f"{ref.spec} ({split} split)", contract, limit)


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
        return _require_images(_decode(_unlabelled([root]), text, contract, None), role)
    if not root.is_dir():
        raise DataError(f"{text}: no such folder or built-in set for {role}")
    return _require_images(_decode(_folder_set(root, contract), text, contract, limit), role)


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
