"""Architectures: every registered model builds, runs at small and 224 px, and uses only int8-friendly ops."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgecls.models.registry import ARCHITECTURES, build_model
from edgecls.runtime.errors import EdgeclsError

_ALLOWED = (
    nn.Conv2d,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.ReLU6,
    nn.MaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Linear,
    nn.Dropout,
    nn.Flatten,
    nn.Identity,
    nn.Sequential,
)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("size", [32, 224])
def test_builds_and_outputs_logits(arch: str, size: int) -> None:
    model = build_model(arch, num_classes=7, input_size=size).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_only_exportable_int8_friendly_layers(arch: str) -> None:
    model = build_model(arch, num_classes=3, input_size=32)
    leaves = [m for m in model.modules() if not list(m.children())]
    assert all(isinstance(m, _ALLOWED) for m in leaves), {type(m).__name__ for m in leaves}


def test_width_multiplier_shrinks_mobilenet() -> None:
    full = sum(p.numel() for p in build_model("mobilenetv2", 10, 224).parameters())
    half = sum(p.numel() for p in build_model("mobilenetv2_050", 10, 224).parameters())
    assert half < full / 2


def test_unknown_arch_is_a_clear_error() -> None:
    with pytest.raises(EdgeclsError, match="unknown architecture 'vgg'"):
        build_model("vgg", 3, 32)
