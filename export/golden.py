"""The golden file: inputs and expected logits that let the runtime's tests check a model without torch.

Format (``<stem>.golden.npz`` next to the fp32 model, e.g. ``model.golden.npz`` for ``model.onnx``; found and
read torch-free by :mod:`edgecls.runtime.device.golden_file`, as ``edgecls selftest`` does on the device):

- ``images``  uint8[N, 64, 64, 3] BGR: real decoded images, each resized with ``cv2.INTER_AREA`` to 64x64
  so they stack (the resize happens before the contract's preprocessing, which then runs on these).
- ``inputs``  float32[N, 3, h, w] = ``preprocess_batch(images, contract)``.
- ``logits``  float32[N, C] from PyTorch on ``inputs``.
- ``labels``  str[C] the contract's labels.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from torch import nn

from edgecls.runtime.atomic import atomic_write_bytes
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.device.golden_file import MAX_GOLDEN_BYTES
from edgecls.runtime.inference.preprocess import preprocess_batch
from edgecls.training import torch_inference

GOLDEN_IMAGE_SIZE = 64
GOLDEN_COUNT = 8


def make_golden(
    images: Sequence[np.ndarray], contract: ModelContract, model: nn.Module
) -> dict[str, np.ndarray]:
    """Arrays of the golden file from decoded ``uint8[H, W, 3]`` BGR images (the first GOLDEN_COUNT, fewer for a
    model so large that 8 of its inputs pass the 64 MiB the device's reader accepts)."""
    side = GOLDEN_IMAGE_SIZE
    h, w = contract.input_size
    per_image = side * side * 3 + 3 * h * w * 4 + len(contract.labels) * 4  # image + input + logits, in bytes
    count = max(1, min(GOLDEN_COUNT, MAX_GOLDEN_BYTES // per_image))
    stacked = np.stack(
        [cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA) for im in list(images)[:count]]
    ).astype(np.uint8)
    inputs = preprocess_batch(list(stacked), contract)
    return {
        "images": stacked,
        "inputs": inputs,
        "logits": torch_inference.torch_logits(model, inputs),
        "labels": np.array(contract.labels),
    }


def write_golden(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> Path:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())
