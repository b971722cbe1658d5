"""MobileNetV2 (Sandler et al. 2018): inverted residuals with depthwise convs and a width multiplier.

The default edge model. For small inputs (< 96 px, e.g. the 32 px built-in sets) the stem uses stride 1, so a
32 px image is reduced 16x (to 2x2) rather than 32x before the head.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from edgecls.models.layers import ConvBNAct, init_weights, make_divisible
from edgecls.models.pretrained import torchvision_imagenet
from edgecls.models.registry import register
from edgecls.models.spec import ArchitectureSpec, PartialContract, WeightsSpec
from edgecls.runtime.contract.model_contract import IMAGENET_MEAN, IMAGENET_STD

# (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
_SETTINGS: list[tuple[int, int, int, int]] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 project (linear); residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, kernel=1, act=nn.ReLU6))
        layers += [
            ConvBNAct(hidden, hidden, kernel=3, stride=stride, groups=hidden, act=nn.ReLU6),
            ConvBNAct(hidden, cout, kernel=1, act=None),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    def __init__(
        self, num_classes: int, width: float = 1.0, input_size: int = 224, dropout: float = 0.2
    ) -> None:
        super().__init__()
        small = input_size < 96
        stem = make_divisible(32 * width)
        last = make_divisible(1280 * max(1.0, width))
        layers: list[nn.Module] = [ConvBNAct(3, stem, stride=1 if small else 2, act=nn.ReLU6)]
        cin = stem
        for t, c, n, s in _SETTINGS:
            cout = make_divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(ConvBNAct(cin, last, kernel=1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(last, num_classes))
        init_weights(self, InvertedResidual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [N,3,S,S] -> features [N,last,S/32,S/32] (S/16 for small inputs) -> [N,last] -> [N,classes]
        return self.classifier(self.pool(self.features(x)))


MOBILENETV2 = register(
    ArchitectureSpec(
        name="mobilenetv2",
        description="MobileNetV2 width 1.0: inverted residuals, depthwise convs (default edge model)",
        build=MobileNetV2,
        head="classifier.2",
        defaults={"width": 1.0},
        weights=WeightsSpec(
            name="MobileNetV2 ImageNet (torchvision IMAGENET1K_V1)",
            # torchvision's ImageNet eval transform: Resize(256, bilinear) + CenterCrop(224), ImageNet mean/std
            contract=PartialContract(224, IMAGENET_MEAN, IMAGENET_STD, interpolation="linear"),
            table=torchvision_imagenet.mobilenetv2_table,
            url=torchvision_imagenet.URLS["mobilenetv2"],
        ),
    )
)
# The same network at half the width: no published weights fit it.
register(
    replace(
        MOBILENETV2, name="mobilenetv2_050", description="MobileNetV2 width 0.5", defaults={"width": 0.5}, weights=None
    )
)
