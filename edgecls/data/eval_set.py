"""The images ``edgecls eval`` scores: one split of a data spec, or every image of a folder (``all``)."""

from __future__ import annotations

import os

from edgecls.data.builtin import builtin_set
from edgecls.data.folders import SPLIT_NAMES, load_image_folder
from edgecls.data.imageset import ImageSet
from edgecls.data.load import load_data
from edgecls.runtime.errors import DataError


def load_eval_set(
    spec: str | os.PathLike[str], split: str = "test", seed: int = 0, classes: tuple[str, ...] | None = None
) -> ImageSet:
    """The images to evaluate on: a split of ``spec`` (train/val/test) or ``all`` images of a folder."""
    if split not in (*SPLIT_NAMES, "all"):
        raise DataError(f"unknown split {split!r}; choose train, val, test or all")
    if split == "all" and not str(spec).startswith("builtin:"):
        return load_image_folder(spec, classes=classes)
    if split == "all":
        return builtin_set(str(spec).split(":", 1)[1])
    splits = load_data(spec, seed=seed)
    return {"train": splits.train, "val": splits.val, "test": splits.test}[split]
