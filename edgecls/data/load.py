"""A data spec (``builtin:NAME`` or a folder) -> seeded train/val/test splits, and how they were made.

A folder with train/ (and val/, test/) keeps its parts; otherwise a stratified split is carved with the seed.
``DataSplits.info`` is saved as the run's split.json.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecls.data.builtin import BUILTIN_SETS, builtin_set
from edgecls.data.folders import check_class_layout, has_split_folders, load_image_folder
from edgecls.data.imageset import ImageSet
from edgecls.data.splits import stratified_split
from edgecls.runtime.errors import DataError

DEFAULT_IMG_SIZE = 224


@dataclass
class DataSplits:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    classes: tuple[str, ...]
    default_input_size: int
    info: dict[str, Any] = field(default_factory=dict)  # saved as split.json: how the split was made


def load_data(
    spec: str | os.PathLike[str], seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> DataSplits:
    """Resolve ``builtin:NAME`` or an ImageFolder tree into train/val/test splits."""
    spec = str(spec)
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        full = builtin_set(name)
        tr, va, te = stratified_split(full.labels(), val_fraction, test_fraction, seed)
        info = {
            "spec": spec,
            "kind": "builtin",
            "seed": seed,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "sizes": [len(tr), len(va), len(te)],
        }
        return DataSplits(
            full.subset(tr), full.subset(va), full.subset(te), full.classes, BUILTIN_SETS[name], info
        )
    root = Path(spec)
    if not root.is_dir():
        raise DataError(f"{spec}: not a data folder nor a built-in set (builtin:shapes, builtin:digits)")
    if has_split_folders(root):
        return _given_splits(root, spec, seed, val_fraction, test_fraction)
    check_class_layout(root)
    full = load_image_folder(root)
    tr, va, te = stratified_split(full.labels(), val_fraction, test_fraction, seed)
    if not tr or not va:
        raise DataError(f"{spec}: too few images for a train/val/test split ({len(full)} images)")
    info = {
        "spec": spec,
        "kind": "folder",
        "split": "stratified",
        "seed": seed,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "sizes": [len(tr), len(va), len(te)],
        "files": {
            "train": [full.name(i) for i in tr],
            "val": [full.name(i) for i in va],
            "test": [full.name(i) for i in te],
        },
    }
    return DataSplits(full.subset(tr), full.subset(va), full.subset(te), full.classes, DEFAULT_IMG_SIZE, info)


def _given_splits(
    root: Path, spec: str, seed: int, val_fraction: float, test_fraction: float
) -> DataSplits:
    """``train/`` plus ``val/`` and/or ``test/``. A missing part is carved from train/ (stratified, seeded),
    never borrowed from the other: validating on test/ would select the checkpoint (and stop early) on the very
    images that then report the score; testing on val/ would report the score selection was made on."""
    check_class_layout(root / "train")
    given = load_image_folder(root / "train")
    parts = {
        split: load_image_folder(root / split, classes=given.classes) if (root / split).is_dir() else None
        for split in ("val", "test")
    }
    carve_val = val_fraction if parts["val"] is None else 0.0
    carve_test = test_fraction if parts["test"] is None else 0.0
    tr, va, te = stratified_split(given.labels(), carve_val, carve_test, seed)
    train = given.subset(tr)
    val = parts["val"] if parts["val"] is not None else given.subset(va)
    test = parts["test"] if parts["test"] is not None else given.subset(te)
    if len(val) == 0 or len(test) == 0:
        missing = "val" if len(val) == 0 else "test"
        raise DataError(f"{root}/train: too few images to carve a {missing} split (give a {missing}/ folder)")
    carved = {k: idx for k, idx in (("val", va), ("test", te)) if parts[k] is None}
    info: dict[str, Any] = {
        "spec": spec,
        "kind": "folders",
        "split": "folders" if not carved else f"folders, {' and '.join(carved)} carved from train/",
        "sizes": [len(train), len(val), len(test)],
    }
    if carved:
        info.update(
            seed=seed,
            val_fraction=carve_val,
            test_fraction=carve_test,
            carved_from_train=sorted(carved),
            files={
                "train": [given.name(i) for i in tr],
                **{k: [given.name(i) for i in v] for k, v in carved.items()},
            },
        )
    return DataSplits(train, val, test, given.classes, DEFAULT_IMG_SIZE, info)


def describe_split(info: dict[str, Any]) -> str:
    """How the validation images were chosen, for the first line of ``edgecls train``."""
    if "val" in info.get("carved_from_train", ()):
        return (
            f"validation: {100 * info['val_fraction']:g}% of train/ per class (seed {info['seed']}, no val/ folder; "
            "test/ only scores the final model)"
        )
    if info.get("kind") == "folders":
        return "validation: the val/ folder" + (
            "; test: carved from train/" if "test" in info.get("carved_from_train", ()) else ""
        )
    return f"a seeded stratified split (seed {info.get('seed')}), saved as split.json"
