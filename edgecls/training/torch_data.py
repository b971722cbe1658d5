"""torch Dataset over an ImageSet: decode -> augment (train only) -> the runtime's preprocess -> tensor.

Unreadable images do not stop training: the sample comes back as ``None`` with its name, the collate
function drops it, and the loop reports every skipped file once plus a count at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from edgecls.data.augment import AugmentConfig, augment
from edgecls.data.imageset import ImageSet
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import ImageDecodeError
from edgecls.runtime.inference.preprocess import decode_floor, preprocess


class ContractDataset(Dataset):
    def __init__(
        self,
        images: ImageSet,
        contract: ModelContract,
        augment_cfg: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.images = images
        self.contract = contract
        self.augment_cfg = augment_cfg
        self.seed = seed
        self._floor = decode_floor(contract)
        self.epoch = 0  # set by the loop so augmentation is a pure function of (seed, epoch, index)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, int, str]:
        try:
            # Evaluation decodes as the device does; augmented training crops need every source pixel.
            img = self.images.load(index, None if self.augment_cfg is not None else self._floor)
        except ImageDecodeError as e:
            return None, -1, str(e)
        if self.augment_cfg is not None:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            img = augment(img, self.augment_cfg, rng)
        x = preprocess(img, self.contract)  # float32[3, h, w]
        return torch.from_numpy(x), self.images.label(index), ""


def collate_skipping_broken(
    batch: list[tuple[Any, int, str]],
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """-> (float32[B', 3, h, w], int64[B'], names of the broken samples dropped from this batch)."""
    good = [(x, y) for x, y, _ in batch if x is not None]
    broken = [err for x, _, err in batch if x is None]
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.long), broken
    xs, ys = zip(*good, strict=True)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long), broken
