"""Finding images on disk: the one folder walk behind training sets, calibration images, bench data and run.

Every caller sees the same files in the same order: sorted, recursive, hidden files and folders (``.git``,
macOS ``._x``) skipped, image suffixes per ``decode.is_image_path``. The labelled layout (one sub-folder of
images per class, the ImageFolder tree) is read by :func:`read_class_tree` alone: training
(``edgecls.data.folders``), int8 calibration and validation (``export/quant/image_sets``) and the bench
(:func:`labelled_images`) build on it, so one folder gives all three the same files and classes.
Torch-free: part of the edge runtime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgecls.runtime.images.decode import is_image_path


def walk_images(folder: str | os.PathLike[str], follow_links: bool = True) -> list[Path]:
    """Images under ``folder``, recursively, sorted by path; hidden entries skipped.

    ``follow_links=False`` is for user-given trees that may link back into themselves (``edgecls run DIR``).
    Followed links are walked once each: a link back up the tree would otherwise be walked again down to the
    kernel's link limit (40 levels), listing every image 40 times. Entries are listed by name only: pipes,
    devices and dangling links with an image suffix are listed too, and refused by the reader
    (:mod:`edgecls.runtime.images.file_guard`), so each becomes an error row naming it instead of vanishing.
    """
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()  # (device, inode) of every folder walked
    for root, dirs, files in os.walk(folder, followlinks=follow_links):
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in files if not f.startswith(".") and is_image_path(f))
    return sorted(found)


def class_folders(root: str | os.PathLike[str]) -> list[Path]:
    """The visible sub-folders of ``root``, sorted by name: one per class in an ImageFolder tree."""
    return sorted((d for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)


@dataclass(frozen=True)
class ClassTree:
    """An ImageFolder tree read once: its class folders, sorted by name, and each one's images (walk order).

    Images directly in ``root`` belong to no class and are not listed here (see :func:`labelled_images`)."""

    root: Path
    files: dict[str, list[Path]]  # class name -> its images, recursively; empty class folders included

    @property
    def classes(self) -> tuple[str, ...]:
        """Every class folder's name, empty ones included, sorted."""
        return tuple(self.files)

    @property
    def empty(self) -> list[str]:
        """The class folders without a single image."""
        return [name for name, files in self.files.items() if not files]

    def images(self) -> list[tuple[Path, str]]:
        """``(path, class name)`` for every image, class by class in name order."""
        return [(path, name) for name, files in self.files.items() for path in files]


def read_class_tree(root: str | os.PathLike[str]) -> ClassTree:
    """The class folders of ``root`` and their images (``root`` must be a folder; callers say what else is
    wrong in their own words: no class folders, an empty one, a class the model does not know)."""
    root = Path(root)
    return ClassTree(root, {d.name: walk_images(d) for d in class_folders(root)})


def labelled_images(root: str | os.PathLike[str]) -> list[tuple[Path, str | None]]:
    """``(path, class name or None)`` for every image under ``root``: the class is the first-level folder.

    Images directly in ``root`` are unlabelled (None) and come first; images in a class folder's sub-folders
    belong to it.
    """
    root = Path(root)
    loose = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".") and is_image_path(p))
    items: list[tuple[Path, str | None]] = [(p, None) for p in loose]
    items.extend(read_class_tree(root).images())
    return items
