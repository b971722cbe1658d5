"""ImageFolder trees: one folder per class, optionally under train/ val/ test/ (read by runtime/images/files)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from edgecls.data.imageset import FileImageSet
from edgecls.runtime.contract.class_labels import label_indices
from edgecls.runtime.errors import DataError
from edgecls.runtime.images.files import class_folders, read_class_tree

SPLIT_NAMES = ("train", "val", "test")


def has_split_folders(root: Path) -> bool:
    return (root / "train").is_dir() and ((root / "val").is_dir() or (root / "test").is_dir())


def check_class_layout(root: Path) -> None:
    """Refuse trees whose class folders are really something else (each walk would mislabel them silently).

    - ``cat/train/...``, ``cat/test/...``: split folders inside each class folder. Walked as classes they would
      be pooled and reshuffled into a new random split, so the given test images leak into training.
    - a single folder (``all/``) holding the class folders: one level too deep, "only one class".
    """
    dirs = class_folders(root)
    nested = [d.name for d in dirs if any((d / s).is_dir() for s in SPLIT_NAMES)]
    if dirs and len(nested) == len(dirs):
        splits = [s for s in SPLIT_NAMES if any((d / s).is_dir() for d in dirs)]
        example = dirs[0].name
        dest = root.resolve().parent / f"{root.name}_by_split"
        move = (
            f"cd {shlex.quote(str(root))} && for c in */; do for s in {' '.join(splits)}; do "
            f'mkdir -p {shlex.quote(str(dest))}/$s && mv "$c$s" {shlex.quote(str(dest))}/$s/"${{c%/}}"; done; done'
        )
        raise DataError(
            f"{root}: every class folder holds {'/, '.join(splits)}/ ({example}/{splits[0]}/...), which edgecls "
            f"would pool and reshuffle; it reads {splits[0]}/{example}/... instead: reorganise with  {move}  "
            f"then train on {dest}"
        )
    if len(dirs) == 1:
        inner = read_class_tree(dirs[0])  # one level down: two or more folders, each with images, are the classes
        if len(inner.classes) >= 2 and not inner.empty:
            raise DataError(
                f"{root}: only one class ({dirs[0].name}), whose sub-folders {', '.join(inner.classes[:4])}"
                f"{', ...' if len(inner.classes) > 4 else ''} look like the classes: train on {dirs[0]} instead"
            )


def load_image_folder(root: str | os.PathLike[str], classes: tuple[str, ...] | None = None) -> FileImageSet:
    """All images of a class-folder tree. ``classes`` fixes the label order (e.g. from a model's contract)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such data folder")
    tree = read_class_tree(root)
    names = tree.classes
    if not names:
        raise DataError(f"{root}: no class folders (expected one sub-folder of images per class)")
    order = classes if classes is not None else names
    # Every class folder must be a label (an empty one too), and each gets its index among them.
    index = dict(zip(names, label_indices(names, order, str(root), "class folder(s)").tolist(), strict=True))
    images = tree.images()
    if not images:
        raise DataError(
            f"{root}: no images found (looked for {', '.join(sorted({'.jpg', '.png', '.bmp', '.webp', '.tiff'}))})"
        )
    if tree.empty and classes is None:
        raise DataError(f"{root}: class folder(s) without images: {', '.join(tree.empty)}")
    if classes is None and len(names) < 2:
        raise DataError(f"{root}: only one class ({names[0]}); a classifier needs at least two class folders")
    return FileImageSet(classes=tuple(order), paths=[p for p, _ in images], targets=[index[c] for _, c in images])
