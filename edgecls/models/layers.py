"""Building blocks shared by the architectures."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` (MobileNet convention; keeps int8 GEMMs aligned)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def tf_same_padding(in_size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding (before, after) for one spatial dimension of ``in_size`` pixels.

    Networks trained in TensorFlow (EfficientNet-Lite) pad a stride-2 conv on an even input more on the
    right/bottom than on the left/top ((0, 1) for a 3x3, (1, 2) for a 5x5); PyTorch's symmetric padding would
    shift every feature map by one pixel and the pretrained weights would no longer give their outputs.
    """
    out = math.ceil(in_size / stride)
    total = max((out - 1) * stride + kernel - in_size, 0)
    return total // 2, total - total // 2


class SamePadConv2d(nn.Conv2d):
    """Conv2d with fixed (possibly asymmetric) zero padding; state-dict keys are those of nn.Conv2d.

    Symmetric padding stays inside the convolution; asymmetric padding becomes one ``F.pad`` (an ONNX Pad,
    which onnxruntime fuses into the following Conv).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int, in_size: int) -> None:
        before, after = tf_same_padding(in_size, kernel, stride)
        symmetric = before == after
        super().__init__(cin, cout, kernel, stride, padding=before if symmetric else 0, groups=groups, bias=False)
        # F.pad order for the last two dims: (left, right, top, bottom); square inputs, so the same both ways.
        self.extra_pad: tuple[int, int, int, int] | None = None if symmetric else (before, after, before, after)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra_pad is not None:
            x = F.pad(x, self.extra_pad)
        return super().forward(x)


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation. BN folds into the conv at export.

    ``same_pad_input`` (the input's side in pixels) switches to TensorFlow "SAME" padding for weights trained
    that way; ``bn_eps`` is BatchNorm's epsilon (TensorFlow's models use 1e-3, PyTorch's default is 1e-5).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = nn.ReLU,
        bn_eps: float = 1e-5,
        same_pad_input: int | None = None,
    ) -> None:
        conv = (
            nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False)
            if same_pad_input is None
            else SamePadConv2d(cin, cout, kernel, stride, groups, same_pad_input)
        )
        layers: list[nn.Module] = [conv, nn.BatchNorm2d(cout, eps=bn_eps)]
        if act is not None:
            layers.append(act(inplace=True))
        super().__init__(*layers)


def init_weights(model: nn.Module, residual_block: type[nn.Module]) -> None:
    """Kaiming-normal convs, unit BatchNorm, small-normal Linear; then the last BatchNorm of every residual
    ``residual_block`` (one with ``use_residual`` and a ``block`` Sequential of ConvBNAct) zero-initialised.

    Zero-init (Goyal et al. 2017): each block starts as the identity, so activations do not grow through the
    residual additions and BatchNorm's running statistics (used at evaluation) match the batch statistics
    from the first epoch.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, residual_block) and m.use_residual:
            nn.init.zeros_(m.block[-1][1].weight)  # type: ignore[index]
