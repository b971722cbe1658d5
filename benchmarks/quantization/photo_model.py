"""Factory for ``edgecls export --model benchmarks/quantization/photo_model.py:build``: edgecls's MobileNetV2
architecture (width 1.0, 224 px) with 16 outputs, one per scikit-image sample photo."""

from __future__ import annotations

from torch import nn

from edgecls.models.mobilenetv2 import MobileNetV2

NUM_CLASSES = 16
CONTRACT_FLAGS = {"resize_mode": "shorter_side_crop", "crop_fraction": 0.875, "interpolation": "linear"}


def build() -> nn.Module:
    return MobileNetV2(NUM_CLASSES, width=1.0, input_size=224)
