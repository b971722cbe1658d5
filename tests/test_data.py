"""Data layer: ImageFolder scanning, seeded stratified splits, built-in sets, augmentation, bad data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecls.data.augment import AugmentConfig, augment
from edgecls.data.eval_set import load_eval_set
from edgecls.data.folders import load_image_folder
from edgecls.data.load import load_data
from edgecls.data.splits import stratified_split
from edgecls.runtime.errors import DataError


def test_builtin_sets_are_deterministic_and_real() -> None:
    a = load_data("builtin:shapes", seed=3)
    b = load_data("builtin:shapes", seed=3)
    assert a.classes == ("circle", "square", "triangle", "star", "cross")
    assert [a.train.name(i) for i in range(20)] == [b.train.name(i) for i in range(20)]
    img = a.train.load(0)
    assert img.dtype == np.uint8 and img.shape == (64, 64, 3)
    digits = load_data("builtin:digits")
    assert digits.classes == tuple(str(i) for i in range(10))
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797  # scikit-learn's real digits
    assert digits.train.load(0).shape == (32, 32, 3)


def test_split_is_stratified_seeded_and_disjoint() -> None:
    labels = np.repeat(np.arange(4), 50)
    tr, va, te = stratified_split(labels, 0.2, 0.1, seed=1)
    assert not set(tr) & set(va) and not set(tr) & set(te) and not set(va) & set(te)
    assert len(tr) + len(va) + len(te) == 200
    for cls in range(4):  # every class in every part, in proportion
        assert (labels[va] == cls).sum() == 10 and (labels[te] == cls).sum() == 5
    assert stratified_split(labels, 0.2, 0.1, seed=1) == (tr, va, te)
    assert stratified_split(labels, 0.2, 0.1, seed=2) != (tr, va, te)


def test_image_folder_split_is_saved_and_reproducible(shapes_folder: Path) -> None:
    s1 = load_data(shapes_folder, seed=5)
    s2 = load_data(shapes_folder, seed=5)
    assert s1.info["files"] == s2.info["files"]
    assert set(s1.classes) == {"circle", "square", "triangle", "star", "cross"}
    assert s1.train.load(0).shape == (64, 64, 3)
    assert len(load_eval_set(shapes_folder, split="all")) == 150


def test_explicit_train_val_test_folders(tmp_path: Path, shapes_folder: Path) -> None:
    import shutil

    for split in ("train", "test"):
        shutil.copytree(shapes_folder, tmp_path / split)
    s = load_data(tmp_path)
    # no val/: validation is carved from train/ (15% of 30 per class), never taken from test/
    assert s.info["split"] == "folders, val carved from train/" and len(s.test) == 150
    assert len(s.val) == 5 * 4 and len(s.train) == 150 - 20
    shutil.copytree(shapes_folder, tmp_path / "val")
    s = load_data(tmp_path)
    assert s.info["split"] == "folders" and len(s.train) == len(s.val) == len(s.test) == 150


@pytest.mark.parametrize(
    "layout,message",
    [
        ({}, "no class folders"),
        ({"cat": 0, "dog": 0}, "no images found"),
        ({"cat": 3, "dog": 0}, "without images: dog"),
        ({"cat": 3}, "only one class"),
    ],
)
def test_bad_folders_give_one_clear_error(tmp_path: Path, layout: dict[str, int], message: str) -> None:
    import cv2

    for cls, n in layout.items():
        (tmp_path / cls).mkdir()
        for i in range(n):
            cv2.imwrite(str(tmp_path / cls / f"{i}.png"), np.full((8, 8, 3), 40 * i, np.uint8))
    with pytest.raises(DataError, match=message):
        load_image_folder(tmp_path)


def test_missing_data_and_unknown_builtin() -> None:
    with pytest.raises(DataError, match="not a data folder"):
        load_data("/nonexistent/path")
    with pytest.raises(DataError, match="builtin:shapes"):
        load_data("builtin:nope")


def test_augment_is_reproducible_and_changes_pixels() -> None:
    img = load_data("builtin:shapes").train.load(0)
    cfg = AugmentConfig()
    a = augment(img, cfg, np.random.default_rng((0, 1, 2)))
    b = augment(img, cfg, np.random.default_rng((0, 1, 2)))
    c = augment(img, cfg, np.random.default_rng((0, 1, 3)))
    assert np.array_equal(a, b)
    assert a.dtype == np.uint8 and a.ndim == 3
    assert not (a.shape == c.shape and np.array_equal(a, c))
    same = augment(img, AugmentConfig.none(), np.random.default_rng(0))
    assert np.array_equal(same, img)
