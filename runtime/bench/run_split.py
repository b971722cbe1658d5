"""The images ``bench`` compares on when none are given: the test split of the run an export came from.

A run records how its data was split in ``RUN/split.json`` (written by training): ``kind`` ``folders`` (a
``train/``/``test/`` tree: the test part is ``SPEC/test``), ``folder`` (a seeded split of one folder: the test
files are listed under ``files.test``) or ``builtin`` (generated in memory: no files to read). The run is the
folder of the checkpoint the export was made from (``export_report.json``'s ``source_checkpoint``, the run folder
around ``export/``, or the contract's provenance ``checkpoint``). Those test images were never trained on, so
``agree %`` on them says how an int8 file behaves on the run's own kind of image, where noise said nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgecls.runtime.bench.images import ImageItem, scan_images
from edgecls.runtime.errors import EdgeclsError


@dataclass(frozen=True)
class RunSplit:
    images: list[ImageItem]
    source: Path  # the split.json they come from
    note: str  # one line for the user: what the bench compares on and how to choose otherwise


def _test_items(info: dict, split_json: Path) -> list[ImageItem]:
    kind = info.get("kind")
    if kind == "folders":
        root = Path(str(info.get("spec", "")))
        for part in ("test", "val"):
            if (root / part).is_dir():
                try:
                    return scan_images(root / part)
                except EdgeclsError:
                    return []
        return []
    files = (info.get("files") or {}).get("test") if kind == "folder" else None
    if not isinstance(files, list):
        return []
    items: list[ImageItem] = []
    for name in files:
        path = Path(str(name))
        if not path.is_file() and (split_json.parent / path).is_file():
            path = split_json.parent / path
        if path.is_file():
            items.append((str(path), path.parent.name))  # class = the image's folder, as the walk names it
    return items


def run_test_split(checkpoints: Sequence[Path]) -> RunSplit | None:
    """The test images of the first run among ``checkpoints``' folders whose split.json names readable files;
    None when no run is known or its split cannot be read back (built-in data, moved folders)."""
    for ckpt in dict.fromkeys(Path(c).resolve() for c in checkpoints):
        split_json = ckpt.parent / "split.json"
        try:
            info = json.loads(split_json.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict):
            continue
        items = _test_items(info, split_json)
        if items:
            note = (
                f"agreement and accuracy on the run's test split: {len(items)} images from {split_json} "
                "(--data DIR to compare on others)"
            )
            return RunSplit(items, split_json, note)
    return None
