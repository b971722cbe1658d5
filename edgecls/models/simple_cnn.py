"""The classic small CNN: conv-ReLU-pool blocks, then fully-connected layers."""

from __future__ import annotations

import torch
from torch import nn

from edgecls.models.layers import ConvBNAct
from edgecls.models.registry import register
from edgecls.models.spec import ArchitectureSpec


class SimpleCNN(nn.Module):
    """``float32[N, 3, S, S]`` -> three (conv-BN-ReLU x2, maxpool /2) blocks -> ``[N, 4*w, S/8, S/8]``
    -> adaptive average pool to 4x4 -> FC(16*4w -> 128) -> ReLU -> dropout -> FC(128 -> classes)."""

    def __init__(self, num_classes: int, width: int = 32, dropout: float = 0.2) -> None:
        super().__init__()
        chans = [width, width * 2, width * 4]
        blocks: list[nn.Module] = []
        cin = 3
        for c in chans:
            blocks += [ConvBNAct(cin, c), ConvBNAct(c, c), nn.MaxPool2d(2)]
            cin = c
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * 16, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


register(
    ArchitectureSpec(
        name="cnn",
        description="classic CNN: 3 conv-ReLU-pool blocks + 2 fully-connected layers",
        build=SimpleCNN,
        head="classifier.4",
        defaults={"width": 32},
        sized=False,  # the adaptive pool makes it size-independent
    )
)
