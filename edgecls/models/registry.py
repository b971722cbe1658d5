"""Architecture registry: ``--arch NAME`` -> a constructor with documented defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from edgecls.models.efficientnet_lite import EfficientNetLite0
from edgecls.models.mobilenetv2 import MobileNetV2
from edgecls.models.resnet import ResNet
from edgecls.models.simple_cnn import SimpleCNN


@dataclass(frozen=True)
class ArchSpec:
    build: Callable[..., nn.Module]  # (num_classes, img_size, **kwargs) -> module
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


ARCHITECTURES: dict[str, ArchSpec] = {
    "cnn": ArchSpec(
        lambda num_classes, img_size, **kw: SimpleCNN(num_classes, **kw),
        "classic CNN: 3 conv-ReLU-pool blocks + 2 fully-connected layers",
        {"width": 32},
    ),
    "mobilenetv2": ArchSpec(
        lambda num_classes, img_size, **kw: MobileNetV2(num_classes, img_size=img_size, **kw),
        "MobileNetV2 width 1.0: inverted residuals, depthwise convs (default edge model)",
        {"width": 1.0},
    ),
    "mobilenetv2_050": ArchSpec(
        lambda num_classes, img_size, **kw: MobileNetV2(num_classes, img_size=img_size, **kw),
        "MobileNetV2 width 0.5",
        {"width": 0.5},
    ),
    "efficientnet_lite0": ArchSpec(
        lambda num_classes, img_size, **kw: EfficientNetLite0(num_classes, img_size=img_size, **kw),
        "EfficientNet-Lite0: EfficientNet-B0 blocks for edge devices (ReLU6, no squeeze-excite, int8-friendly)",
        {},
    ),
    "resnet10": ArchSpec(
        lambda num_classes, img_size, **kw: ResNet(num_classes, img_size=img_size, **kw),
        "ResNet-10: BasicBlocks [1,1,1,1], width 32",
        {"layers": (1, 1, 1, 1), "width": 32},
    ),
    "resnet18": ArchSpec(
        lambda num_classes, img_size, **kw: ResNet(num_classes, img_size=img_size, **kw),
        "ResNet-18: BasicBlocks [2,2,2,2], width 64",
        {"layers": (2, 2, 2, 2), "width": 64},
    ),
}
DEFAULT_ARCH = "mobilenetv2"
#: A user's own network (``edgecls train --model FILE.py:FACTORY``): arch_kwargs = {"model": spec, "head": name}.
USER_ARCH = "user"


def build_model(arch: str, num_classes: int, img_size: int, **overrides: Any) -> nn.Module:
    from edgecls.runtime.errors import EdgeclsError

    if arch == USER_ARCH:
        from edgecls.models.user_model import build_user_model, replace_head

        return replace_head(build_user_model(overrides["model"]), overrides["head"], num_classes).train()
    if arch not in ARCHITECTURES:
        raise EdgeclsError(f"unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURES)}")
    spec = ARCHITECTURES[arch]
    kwargs = {**spec.defaults, **overrides}
    if "layers" in kwargs:
        kwargs["layers"] = tuple(kwargs["layers"])
    return spec.build(num_classes, img_size, **kwargs)


def arch_kwargs(arch: str, **overrides: Any) -> dict[str, Any]:
    """The full keyword set a checkpoint stores so the model can be rebuilt exactly."""
    kwargs = {**(ARCHITECTURES[arch].defaults if arch != USER_ARCH else {}), **overrides}
    if "layers" in kwargs:
        kwargs["layers"] = list(kwargs["layers"])
    return kwargs


def describe_architectures() -> list[tuple[str, str]]:
    return [(name, spec.description) for name, spec in ARCHITECTURES.items()]
