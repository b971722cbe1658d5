"""ImageSet: an indexable labelled image collection, file-backed or in memory.

Every stage consumes data through this small interface: ``len()``, ``classes``, ``label(i)``,
``name(i)`` (file path or ``builtin:NAME/INDEX``) and ``load(i, min_size) -> uint8[H, W, 3]`` BGR, decoded with
the runtime's single decoder so training sees what the device sees. Evaluation passes the contract's
``decode_floor`` as ``min_size`` (large JPEGs decode at reduced scale, as on the device); training crops pass
none (full resolution for random crops).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecls.runtime.images.decode import decode_image


class ImageSet:
    classes: tuple[str, ...]

    def __len__(self) -> int:
        raise NotImplementedError

    def label(self, index: int) -> int:
        raise NotImplementedError

    def name(self, index: int) -> str:
        raise NotImplementedError

    def load(self, index: int, min_size: tuple[int, int] | None = None) -> np.ndarray:
        """``uint8[H, W, 3]`` BGR; raises :class:`edgecls.runtime.errors.ImageDecodeError` for broken files."""
        raise NotImplementedError

    def labels(self) -> np.ndarray:
        return np.asarray([self.label(i) for i in range(len(self))], dtype=np.int64)

    def subset(self, indices: Sequence[int]) -> ImageSet:
        return SubsetImageSet(self, list(indices))


@dataclass
class FileImageSet(ImageSet):
    classes: tuple[str, ...]
    paths: list[Path]
    targets: list[int]

    def __len__(self) -> int:
        return len(self.paths)

    def label(self, index: int) -> int:
        return self.targets[index]

    def name(self, index: int) -> str:
        return str(self.paths[index])

    def load(self, index: int, min_size: tuple[int, int] | None = None) -> np.ndarray:
        return decode_image(self.paths[index], min_size)


@dataclass
class ArrayImageSet(ImageSet):
    """Images generated or shipped in memory (the built-in sets)."""

    classes: tuple[str, ...]
    images: list[np.ndarray]  # each uint8[H, W, 3] BGR
    targets: list[int]
    prefix: str

    def __len__(self) -> int:
        return len(self.images)

    def label(self, index: int) -> int:
        return self.targets[index]

    def name(self, index: int) -> str:
        return f"{self.prefix}/{index}"

    def load(self, index: int, min_size: tuple[int, int] | None = None) -> np.ndarray:
        return self.images[index]  # already decoded; min_size only saves decoding work


class SubsetImageSet(ImageSet):
    def __init__(self, base: ImageSet, indices: list[int]) -> None:
        self.base = base
        self.indices = indices
        self.classes = base.classes

    def __len__(self) -> int:
        return len(self.indices)

    def label(self, index: int) -> int:
        return self.base.label(self.indices[index])

    def name(self, index: int) -> str:
        return self.base.name(self.indices[index])

    def load(self, index: int, min_size: tuple[int, int] | None = None) -> np.ndarray:
        return self.base.load(self.indices[index], min_size)
