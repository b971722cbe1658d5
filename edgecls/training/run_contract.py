"""The preprocessing contract a training run writes (contract.json, every checkpoint, and later the ONNX file).

Its fields come from three places, first one wins: the pretrained weights (the preprocessing they were trained
with, and their resolution as the default size), the run's config, and the data's defaults (built-in sets:
stretch + area at 32 px; folders: shorter_side_crop + linear at 224 px).
"""

from __future__ import annotations

from edgecls.data import DataSplits
from edgecls.models.registry import USER_ARCH
from edgecls.models.registry import arch_kwargs as full_arch_kwargs
from edgecls.runtime.contract import ModelContract
from edgecls.training.config import TrainConfig
from edgecls.training.model_init import weights_contract_fields


def make_contract(config: TrainConfig, splits: DataSplits) -> ModelContract:
    """The preprocessing contract; pretrained weights fix mean/std, interpolation, crop and the default size."""
    fixed = weights_contract_fields(config)
    size = config.input_size or fixed.get("input_size") or splits.default_img_size
    builtin = config.data.startswith("builtin:")
    resize = fixed.get("resize_mode") or config.resize_mode or ("stretch" if builtin else "shorter_side_crop")
    return ModelContract(
        labels=splits.classes,
        input_size=(size, size),
        resize_mode=resize,  # type: ignore[arg-type]
        crop_fraction=fixed.get("crop_fraction", 0.875),
        interpolation=fixed.get("interpolation") or config.interpolation or ("area" if builtin else "linear"),
        mean=fixed.get("mean", config.mean),
        std=fixed.get("std", config.std),  # type: ignore[arg-type]
        provenance={
            "arch": config.arch if config.model is None else USER_ARCH,
            "arch_kwargs": full_arch_kwargs(config.arch, **config.arch_kwargs) if config.model is None else {},
            "data": config.data,
            "seed": config.seed,
        },
    )
