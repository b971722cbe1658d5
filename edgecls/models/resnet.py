"""A small ResNet (He et al. 2016) with BasicBlocks; resnet18 = [2, 2, 2, 2].

For small inputs (< 96 px) the stem is a single stride-1 3x3 conv without max-pool (CIFAR convention).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from edgecls.models.layers import ConvBNAct
from edgecls.models.pretrained import torchvision_imagenet
from edgecls.models.registry import register
from edgecls.models.spec import ArchitectureSpec, PartialContract, WeightsSpec
from edgecls.runtime.contract.model_contract import IMAGENET_MEAN, IMAGENET_STD


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(cin, cout, stride=stride)
        self.conv2 = ConvBNAct(cout, cout, act=None)
        self.shortcut: nn.Module = (
            ConvBNAct(cin, cout, kernel=1, stride=stride, act=None)
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)
        nn.init.zeros_(self.conv2[1].weight)  # block starts as identity (Goyal et al. 2017): stable early training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(
        self, num_classes: int, layers: tuple[int, ...] = (2, 2, 2, 2), width: int = 64, input_size: int = 224
    ) -> None:
        super().__init__()
        if input_size < 96:
            self.stem: nn.Module = ConvBNAct(3, width)
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(3, width, 7, 2, 3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        stages: list[nn.Module] = []
        cin = width
        for i, n in enumerate(layers):
            cout = width * 2**i
            for j in range(n):
                stages.append(BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1))
                cin = cout
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [N,3,S,S] -> [N,8w,S/32,S/32] -> [N,8w] -> [N,classes]
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


RESNET18 = register(
    ArchitectureSpec(
        name="resnet18",
        description="ResNet-18: BasicBlocks [2,2,2,2], width 64",
        build=ResNet,
        head="fc",
        defaults={"layers": (2, 2, 2, 2), "width": 64},
        weights=WeightsSpec(
            name="ResNet-18 ImageNet (torchvision IMAGENET1K_V1)",
            # torchvision's ImageNet eval transform: Resize(256, bilinear) + CenterCrop(224), ImageNet mean/std
            contract=PartialContract(224, IMAGENET_MEAN, IMAGENET_STD, interpolation="linear"),
            table=torchvision_imagenet.resnet18_table,
            url=torchvision_imagenet.URLS["resnet18"],
            min_input_size=96,  # below it the stem is a stride-1 3x3 conv: the 7x7 weights do not fit
        ),
    )
)
# Half the blocks at half the width: no published weights fit it.
register(
    replace(
        RESNET18,
        name="resnet10",
        description="ResNet-10: BasicBlocks [1,1,1,1], width 32",
        defaults={"layers": (1, 1, 1, 1), "width": 32},
        weights=None,
    )
)
