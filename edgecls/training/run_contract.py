"""The preprocessing contract a training run writes (contract.json, every checkpoint, and later the ONNX file).

Each field comes from the first of three places that says it: the run's config (the contract flags given to
``edgecls train``), the pretrained weights (the partial contract of the architecture's spec: the preprocessing
the weights were trained with, and their resolution), and the data's defaults (built-in sets: stretch + area at
32 px; folders: shorter_side_crop + linear at 224 px). ModelContract's own defaults fill the rest.
"""

from __future__ import annotations

from typing import Any

from edgecls.data.load import DataSplits
from edgecls.models.registry import USER_ARCH
from edgecls.models.registry import arch_kwargs as full_arch_kwargs
from edgecls.runtime.contract import ModelContract
from edgecls.training.config import TrainConfig
from edgecls.training.model_init import weights_contract_fields


def data_contract_defaults(config: TrainConfig, splits: DataSplits) -> dict[str, Any]:
    """What the data suggests: small built-in sets are stretched with area downscaling, photos centre-cropped."""
    size = splits.default_img_size
    if config.data.startswith("builtin:"):
        return {"input_size": (size, size), "resize_mode": "stretch", "interpolation": "area"}
    return {"input_size": (size, size), "resize_mode": "shorter_side_crop", "interpolation": "linear"}


def make_contract(config: TrainConfig, splits: DataSplits) -> ModelContract:
    """The preprocessing contract: the config's fields, else the pretrained weights', else the data's."""
    fields = {**data_contract_defaults(config, splits), **weights_contract_fields(config), **config.contract_fields()}
    return ModelContract(
        labels=splits.classes,
        **fields,
        provenance={
            "arch": config.arch if config.model is None else USER_ARCH,
            "arch_kwargs": full_arch_kwargs(config.arch, **config.arch_kwargs) if config.model is None else {},
            "data": config.data,
            "seed": config.seed,
        },
    )
