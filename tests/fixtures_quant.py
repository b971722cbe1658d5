"""Fixtures of the int8 tests: small real models exported to ONNX, and coloured images to calibrate them on.

``outlier_model`` -> model.onnx of ``_Outlier`` (4 classes, 32 px, contract ``CONTRACT``), whose plain int8 breaks
until two named convs stay float; ``colour_images`` / ``image_folder`` -> seeded flat-colour images, in memory
or as PNG files; ``skewed_copy`` -> a training run whose post-training int8 misses (QAT and distillation).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgecls.export.onnx_export import export_to_onnx
from edgecls.runtime.contract import ModelContract


class _Outlier(nn.Module):
    """conv1 has one constant channel of 5000 that conv2 ignores: the shared per-tensor int8 range of conv1's
    output crushes the channels conv2 does use. Only keeping conv1 and conv2 in float together fixes it;
    two identity 1x1 convs in front (pre1, pre2) and the head quantize well, so the fixed model still runs
    mostly in int8."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)
        self.pre1 = nn.Conv2d(3, 3, 1)
        self.pre2 = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv1.weight[0] = 0
            self.conv1.bias[0] = 5000
            self.conv2.weight[:, 0] = 0
            self.head.weight *= 20
            for pre in (self.pre1, self.pre2):
                pre.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
                pre.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(self.pre2(self.pre1(x))))))
        return self.head(x.mean((2, 3)))


CONTRACT = ModelContract(labels=("a", "b", "c", "d"), input_size=(32, 32), resize_mode="stretch")


def colour_images(n: int, seed: int) -> list[np.ndarray]:
    """n uint8[32, 32, 3] images: one random colour each, with pixel noise (seeded)."""
    rng = np.random.default_rng(seed)
    return [
        np.clip(rng.integers(0, 256, (1, 1, 3)) + rng.normal(0, 8, (32, 32, 3)), 0, 255).astype(np.uint8)
        for _ in range(n)
    ]


def image_folder(folder: Path, n: int, seed: int) -> Path:
    """``colour_images(n, seed)`` written as PNG files into ``folder``."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(colour_images(n, seed)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), im)
    return folder


@pytest.fixture(scope="session")
def outlier_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.onnx of ``_Outlier`` with ``CONTRACT`` (tests copy it before changing it)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("outlier") / "model.onnx"
    export_to_onnx(_Outlier().eval(), CONTRACT, path, exporter="torchscript")
    return path


def skewed_copy(run: Path, dst: Path, factor: float) -> Path:
    """A copy of a SimpleCNN run computing the same function, but with channel 0 of every conv block ``factor``
    times larger after its ReLU (undone by the next layer's weights): per-tensor activation ranges are then set
    by one channel, and post-training int8 rounds the others to a few levels."""
    from edgecls.training.checkpoint import load_checkpoint, save_checkpoint

    shutil.copytree(run, dst, ignore=shutil.ignore_patterns("export*"))
    ckpt = load_checkpoint(dst / "best.pt")
    model = ckpt.build_model()
    blocks = [m for m in model.features if isinstance(m, nn.Sequential)]
    consumers = [b[0] for b in blocks[1:]] + [model.classifier[1]]
    with torch.no_grad():
        for block, consumer in zip(blocks, consumers, strict=True):
            block[1].weight[0] *= factor
            block[1].bias[0] *= factor
            per_channel = consumer.weight.shape[1] // block[1].num_features  # Linear: 16 pooled positions each
            consumer.weight[:, :per_channel] /= factor
    raw = {k: v for k, v in ckpt.raw.items() if k not in ("format", "format_version")}
    save_checkpoint(dst / "best.pt", {**raw, "model_state": model.state_dict()})
    (dst / "last.pt").unlink(missing_ok=True)
    return dst
