"""Fixtures of the int8 tests: small real models exported to ONNX, and coloured images to calibrate them on.

``outlier_model`` -> model.onnx of ``_Outlier`` (4 classes, 32 px, contract ``CONTRACT``), whose plain int8 breaks
until two named convs stay float; ``colour_images`` / ``image_folder`` -> seeded flat-colour images, in memory
or as PNG files; ``skewed_copy`` -> a training run whose post-training int8 misses (QAT);
``speed_models`` -> 224 px files whose int8 is certainly faster (``wide``) or, with unsigned
weights, certainly slower (``depthwise``) than fp32 (contract ``CONTRACT_224``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgecls.export.onnx_export import export_to_onnx
from edgecls.runtime.contract.model_contract import ModelContract


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


#: The int8 speed tests' models: 224 px, 4 classes (speed needs a real input size; accuracy is not their point).
CONTRACT_224 = ModelContract(labels=("a", "b", "c", "d"), input_size=(224, 224), resize_mode="stretch")


class _WideConvs(nn.Module):
    """Seven wide 3x3 convs down to 28x28 (32-128 channels): GEMM work that onnxruntime's int8 kernels run 2-2.5x
    faster than fp32 on VNNI (measured 2.37x at load 5) - certainly faster in int8."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for w, stride in ((32, 2), (64, 2), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1)):
            layers += [nn.Conv2d(c, w, 3, stride, 1), nn.ReLU()]
            c = w
        self.body, self.head = nn.Sequential(*layers), nn.Linear(c, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean((2, 3)))


class _Depthwise(nn.Module):
    """Eight 3x3 depthwise convs at 112x112 with ReLU6: cheap in fp32 (NCHWc kernels), and in int8 with 8-bit
    unsigned weights (u8u8) onnxruntime has no fast kernel (measured 8x slower per conv in its profiler)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, 2, 1)
        self.depthwise = nn.ModuleList(nn.Conv2d(32, 32, 3, 1, 1, groups=32) for _ in range(8))
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for conv in self.depthwise:
            x = torch.clamp(conv(x), 0, 6)
        return self.head(x.mean((2, 3)))


class _ConvsThenDepthwise(nn.Module):
    """A 3x3 stem and four 3x3 convs (32 channels, 112x112), then six depthwise convs: with 8-bit unsigned weights
    (u8u8) every conv runs slower in int8 than in fp32 here, the 3x3 ones by 3 ms in all; kept float together (a
    float region: onnxruntime cannot re-quantize them) they measured 0.70x the all-int8 file's time, and the six
    int8 depthwise convs keep more than half the weighted ops int8."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, 2, 1)
        self.convs = nn.ModuleList(nn.Conv2d(32, 32, 3, 1, 1) for _ in range(4))
        self.depthwise = nn.ModuleList(nn.Conv2d(32, 32, 3, 1, 1, groups=32) for _ in range(6))
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        for conv in self.convs:
            x = torch.relu(conv(x))
        for conv in self.depthwise:
            x = torch.clamp(conv(x), 0, 6)
        return self.head(x.mean((2, 3)))


@pytest.fixture(scope="session")
def speed_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fp32 files (``CONTRACT_224``): ``wide`` of ``_WideConvs``, ``depthwise`` of ``_Depthwise``, ``tail`` of
    ``_ConvsThenDepthwise``."""
    folder = tmp_path_factory.mktemp("speed")
    out = {}
    for name, build in (("wide", _WideConvs), ("depthwise", _Depthwise), ("tail", _ConvsThenDepthwise)):
        torch.manual_seed(0)
        out[name] = folder / f"{name}.onnx"
        export_to_onnx(build().eval(), CONTRACT_224, out[name], exporter="torchscript")
    return out
