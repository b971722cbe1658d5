"""One spec per architecture (like timm's ``pretrained_cfg``): everything edgecls knows about an ``--arch NAME``.

Each model file registers its own specs (``register(ArchitectureSpec(...))`` at its bottom); the registry only
holds the table. A spec carries the constructor and its default keywords, the classifier head's module name
(replaced for the data's classes when fine-tuning), and, for architectures with ImageNet weights, those weights:
where they come from, how their keys map onto edgecls's modules, and the part of the preprocessing contract
they imply (the weights were trained on inputs made one way; fine-tuning feeds the same by default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from edgecls.models.pretrained.mapping import TensorMap


@dataclass(frozen=True)
class PartialContract:
    """The ModelContract fields a network's pretrained weights fix; the rest (labels, ...) comes from the run.

    Field names are ModelContract's; ``input_size`` is the square side the weights were trained at.
    """

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    resize_mode: str = "shorter_side_crop"
    crop_fraction: float = 0.875

    def fields(self) -> dict[str, Any]:
        """As ModelContract keywords (``input_size`` as (height, width))."""
        return {
            "input_size": (self.input_size, self.input_size),
            "mean": self.mean,
            "std": self.std,
            "interpolation": self.interpolation,
            "resize_mode": self.resize_mode,
            "crop_fraction": self.crop_fraction,
        }


@dataclass(frozen=True)
class WeightsSpec:
    """An architecture's published ImageNet weights: what they are called, where they are read from, how their
    tensors map onto edgecls's module, and the preprocessing they were trained with."""

    name: str  # what the provenance calls these weights
    contract: PartialContract
    table: Callable[[], list[TensorMap]]  # published key -> edgecls key and shape, every tensor once
    url: str | None = None  # torch.hub download (hash-checked)
    package_file: Callable[[], str] | None = None  # a file shipped inside an installed package (no network)
    min_input_size: int = 0  # below it edgecls builds a different stem the weights do not fit

    def __post_init__(self) -> None:
        if (self.url is None) == (self.package_file is None):
            raise ValueError(f"{self.name}: give exactly one of url and package_file")


@dataclass(frozen=True)
class ArchitectureSpec:
    name: str  # the --arch value
    description: str
    build: Callable[..., nn.Module]  # build(num_classes, **defaults, [input_size=S]) -> module in train mode
    head: str  # the classifier's module name (a Linear): what fine-tuning replaces for the data's classes
    defaults: Mapping[str, Any] = field(default_factory=dict)  # the constructor's keywords for this name
    # True when the constructor takes ``input_size`` (the stem depends on it: stride-1 below 96 px, TF-SAME pads)
    sized: bool = True
    weights: WeightsSpec | None = None  # ImageNet weights for --pretrained, if published

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))  # frozen all the way down

    @property
    def contract(self) -> PartialContract | None:
        """The contract fields the pretrained weights imply (None without weights)."""
        return self.weights.contract if self.weights is not None else None

    @property
    def head_keys(self) -> tuple[str, str]:
        """The head's state-dict keys: the tensors fine-tuning does not take from the weights."""
        return f"{self.head}.weight", f"{self.head}.bias"
