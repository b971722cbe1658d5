"""torchvision's published ImageNet weights (IMAGENET1K_V1) for MobileNetV2 and ResNet-18 -> edgecls's modules.

The key layouts are those of torchvision/models/mobilenetv2.py and resnet.py:

- MobileNetV2: ``features.0`` = Conv2dNormActivation (``.0`` conv, ``.1`` BN); ``features.1..17`` =
  InvertedResidual whose ``conv`` Sequential holds [expand ConvNormAct (t != 1)], depthwise ConvNormAct, the
  1x1 projection conv and its BN as two separate entries; ``features.18`` = 1x1 ConvNormAct to 1280;
  ``classifier.1`` = Linear. edgecls's ``block`` wraps the projection conv+BN in one ConvBNAct, so
  torchvision's ``conv.{k}`` / ``conv.{k+1}`` become edgecls's ``block.{k}.0`` / ``block.{k}.1``.
- ResNet-18: ``conv1``/``bn1``, ``layer{1..4}.{0,1}`` BasicBlocks (``conv1``/``bn1``, ``conv2``/``bn2``,
  ``downsample.0``/``.1`` on the first block of layers 2-4), ``fc``. edgecls numbers the 8 blocks
  ``stages.0..7``.
"""

from __future__ import annotations

from edgecls.models.pretrained.mapping import TensorMap, bn_entries, conv_entries, head_entries

IMAGENET_CLASSES = 1000

#: torchvision's download URLs; the 8 hex digits in the name are the start of the file's sha256, which
#: torch.hub.load_state_dict_from_url(check_hash=True) verifies.
URLS = {
    "mobilenetv2": "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
}

# (t, c, n, s) of torchvision's inverted_residual_setting (the paper's Table 2), width 1.0.
_MOBILENETV2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                        (6, 320, 1, 1))  # fmt: skip


def mobilenetv2_table() -> list[TensorMap]:
    """Every tensor of mobilenet_v2-b0353104.pth (num_batches_tracked optional) with its edgecls key."""
    rows = conv_entries("features.0.0", "features.0.0", (32, 3, 3, 3)) + bn_entries("features.0.1", "features.0.1", 32)
    cin, index = 32, 1
    for t, c, n, _s in _MOBILENETV2_SETTING:
        for _ in range(n):
            src, dst = f"features.{index}.conv", f"features.{index}.block"
            hidden, k = cin * t, 0
            if t != 1:
                rows += conv_entries(f"{src}.0.0", f"{dst}.0.0", (hidden, cin, 1, 1))
                rows += bn_entries(f"{src}.0.1", f"{dst}.0.1", hidden)
                k = 1
            rows += conv_entries(f"{src}.{k}.0", f"{dst}.{k}.0", (hidden, 1, 3, 3))
            rows += bn_entries(f"{src}.{k}.1", f"{dst}.{k}.1", hidden)
            rows += conv_entries(f"{src}.{k + 1}", f"{dst}.{k + 1}.0", (c, hidden, 1, 1))
            rows += bn_entries(f"{src}.{k + 2}", f"{dst}.{k + 1}.1", c)
            cin, index = c, index + 1
    rows += conv_entries(f"features.{index}.0", f"features.{index}.0", (1280, cin, 1, 1))
    rows += bn_entries(f"features.{index}.1", f"features.{index}.1", 1280)
    rows += head_entries("classifier.1", "classifier.2", 1280, IMAGENET_CLASSES)
    return rows


def resnet18_table() -> list[TensorMap]:
    """Every tensor of resnet18-f37072fd.pth (num_batches_tracked optional) with its edgecls key."""
    rows = conv_entries("conv1", "stem.0", (64, 3, 7, 7)) + bn_entries("bn1", "stem.1", 64)
    cin, block = 64, 0
    for layer, cout in enumerate((64, 128, 256, 512), start=1):
        for j in range(2):
            src, dst = f"layer{layer}.{j}", f"stages.{block}"
            first_in = cin if j == 0 else cout
            rows += conv_entries(f"{src}.conv1", f"{dst}.conv1.0", (cout, first_in, 3, 3))
            rows += bn_entries(f"{src}.bn1", f"{dst}.conv1.1", cout)
            rows += conv_entries(f"{src}.conv2", f"{dst}.conv2.0", (cout, cout, 3, 3))
            rows += bn_entries(f"{src}.bn2", f"{dst}.conv2.1", cout)
            if j == 0 and layer > 1:
                rows += conv_entries(f"{src}.downsample.0", f"{dst}.shortcut.0", (cout, cin, 1, 1))
                rows += bn_entries(f"{src}.downsample.1", f"{dst}.shortcut.1", cout)
            block += 1
        cin = cout
    rows += head_entries("fc", "fc", 512, IMAGENET_CLASSES)
    return rows
