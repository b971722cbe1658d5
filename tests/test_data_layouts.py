"""Folder layouts a newcomer brings (issue 25), as real folders of real images (the shapes as PNG/JPEG):

- ``train/`` + ``test/`` without ``val/``: validation is carved from train/ (stratified, seeded, recorded in
  split.json), never borrowed from test/, and ``edgecls train`` says so in its first line;
- ``cat/train/...``, ``cat/test/...`` (splits inside the class folders): refused with the commands that
  reorganise it, which work;
- one level too deep (``all/cat/...``): refused naming the folder to train on;
- a failed ``edgecls train`` leaves no run folder behind (and never removes a folder that existed before).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_runtime import REPO, _cli_env

from edgecls.data.eval_set import load_eval_set
from edgecls.data.load import load_data
from edgecls.runtime.errors import DataError


def _edgecls(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgecls", *args], capture_output=True, text=True,
                          timeout=timeout, env=_cli_env(), cwd=REPO)  # fmt: skip


def _split_tree(shapes_folder: Path, root: Path, parts: dict[str, slice]) -> Path:
    """``root/<split>/<class>/...``: the shapes of each class divided by file order among ``parts``."""
    for cls in sorted(p.name for p in shapes_folder.iterdir()):
        files = sorted((shapes_folder / cls).iterdir())
        for split, sl in parts.items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for f in files[sl]:
                shutil.copy(f, root / split / cls / f.name)
    return root


def test_train_and_test_without_val_validates_on_train_never_on_test(shapes_folder: Path, tmp_path: Path) -> None:
    root = _split_tree(shapes_folder, tmp_path / "photos", {"train": slice(0, 20), "test": slice(20, None)})
    splits = load_data(root, seed=3)
    names = {part: {Path(getattr(splits, part).name(i)).relative_to(root).parts[0] for i in
                    range(len(getattr(splits, part)))} for part in ("train", "val", "test")}  # fmt: skip
    assert names == {"train": {"train"}, "val": {"train"}, "test": {"test"}}
    val = {splits.val.name(i) for i in range(len(splits.val))}
    train = {splits.train.name(i) for i in range(len(splits.train))}
    assert not val & train and len(val) + len(train) == 5 * 20
    assert sorted(splits.val.labels().tolist()) == sorted([c for c in range(5) for _ in range(3)])  # 15% per class
    assert splits.info["carved_from_train"] == ["val"] and sorted(splits.info["files"]["val"]) == sorted(val)
    again = load_data(root, seed=3)  # what export and eval rebuild from the run's seed: the same images
    assert [again.val.name(i) for i in range(len(again.val))] == [splits.val.name(i) for i in range(len(splits.val))]
    assert {load_eval_set(root, split="val", seed=3).name(i) for i in range(len(splits.val))} == val
    assert load_data(root, seed=4).info["files"]["val"] != splits.info["files"]["val"]


def test_train_and_val_without_test_carves_test_from_train(shapes_folder: Path, tmp_path: Path) -> None:
    root = _split_tree(shapes_folder, tmp_path / "photos", {"train": slice(0, 20), "val": slice(20, None)})
    splits = load_data(root)
    tested = {splits.test.name(i) for i in range(len(splits.test))}
    assert tested and all("/train/" in name for name in tested)  # never the val/ images selection used
    assert all("/val/" in splits.val.name(i) for i in range(len(splits.val)))


@pytest.mark.slow  # trains in subprocesses: 33 s at load 5-13
def test_train_says_where_validation_comes_from_in_its_first_line(shapes_folder: Path, tmp_path: Path) -> None:
    root = _split_tree(shapes_folder, tmp_path / "photos", {"train": slice(0, 12), "test": slice(12, 18)})
    run = tmp_path / "run"
    proc = _edgecls("train", str(root), "--arch", "cnn", "--input-size", "32", "--epochs", "1", "--out", str(run))
    assert proc.returncode == 0, proc.stderr
    first = proc.stderr.strip().splitlines()[0]
    assert "validation: 15% of train/ per class (seed 0, no val/ folder" in first, first
    assert "50 train / 10 val / 30 test images" in first  # 2 of 12 per class
    split = json.loads((run / "split.json").read_text())
    assert split["carved_from_train"] == ["val"] and len(split["files"]["val"]) == 10
    assert not any("/test/" in f for f in split["files"]["val"])


@pytest.mark.slow  # train subprocesses: 11 s at load 5-13
def test_split_folders_inside_class_folders_are_refused_with_commands_that_fix_it(
    shapes_folder: Path, tmp_path: Path
) -> None:
    by_split = _split_tree(shapes_folder, tmp_path / "made", {"train": slice(0, 20), "test": slice(20, None)})
    nested = tmp_path / "my photos"  # a space: the suggested commands must quote it
    for split in ("train", "test"):
        for cls in (by_split / split).iterdir():
            shutil.copytree(cls, nested / cls.name / split)
    with pytest.raises(DataError, match=r"every class folder holds train/, test/ \(circle/train/\.\.\.\)"):
        load_data(nested)
    run = tmp_path / "run"
    proc = _edgecls("train", str(nested), "--arch", "cnn", "--input-size", "32", "--epochs", "1", "--out", str(run))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1 and "train/circle/..." in line
    assert not run.exists()  # the failed run left nothing behind
    commands = line.split("reorganise with  ", 1)[1].split("  then train on ", 1)
    subprocess.run(["bash", "-c", commands[0]], check=True)
    fixed = load_data(commands[1])
    assert len(fixed.train) + len(fixed.val) == 5 * 20 and len(fixed.test) == 5 * 10
    assert all("/test/" in fixed.test.name(i) for i in range(len(fixed.test)))


@pytest.mark.slow  # train subprocesses: 13 s at load 5-13
def test_one_level_too_deep_names_the_folder_to_train_on(shapes_folder: Path, tmp_path: Path) -> None:
    deep = tmp_path / "photos"
    shutil.copytree(shapes_folder, deep / "all")
    with pytest.raises(DataError, match=rf"only one class \(all\).*train on {deep / 'all'} instead"):
        load_data(deep)
    proc = _edgecls("train", str(deep), "--epochs", "1", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and f"train on {deep / 'all'} instead" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # train subprocesses: 13 s at load 5-13
def test_failed_train_removes_only_what_it_created(tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    new = tmp_path / "runs" / "first"
    proc = _edgecls("train", str(empty), "--out", str(new))
    assert proc.returncode == 2 and "no class folders" in proc.stderr
    assert not (tmp_path / "runs").exists()  # the parent it made goes too
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me")
    proc = _edgecls("train", str(empty), "--out", str(existing))
    assert proc.returncode == 2
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]
