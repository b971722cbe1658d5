"""The preprocessing contract a training run writes (contract.json, every checkpoint, and later the ONNX file).

Each field comes from the first of three places that says it: the run's config (the contract flags given to
``edgecls train``), the pretrained weights (the partial contract of the architecture's spec: the preprocessing
the weights were trained with, and their resolution), and the data's defaults (built-in sets: stretch + area at
32 px; folders: shorter_side_crop + linear at 224 px). ModelContract's own defaults fill the rest.
"""

from __future__ import annotations

from typing import Any

from edgecls.data.load import DataSplits
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.training.config import TrainConfig
from edgecls.training.model_init import ModelChoice, choose_model


def data_contract_defaults(config: TrainConfig, splits: DataSplits) -> dict[str, Any]:
    """What the data suggests: small built-in sets are stretched with area downscaling, photos centre-cropped."""
    size = splits.default_input_size
    if config.data.startswith("builtin:"):
        return {"input_size": (size, size), "resize_mode": "stretch", "interpolation": "area"}
    return {"input_size": (size, size), "resize_mode": "shorter_side_crop", "interpolation": "linear"}


def make_contract(config: TrainConfig, splits: DataSplits, choice: ModelChoice | None = None) -> ModelContract:
    """The preprocessing contract: the config's fields, else the pretrained weights' (``choice``, looked up when
    not given), else the data's. The network's provenance (arch, arch_kwargs, weights) is added by whoever
    builds it: only the built model knows a ``--model``'s head."""
    weights_fields = (choice or choose_model(config)).contract_fields()
    fields = {**data_contract_defaults(config, splits), **weights_fields, **config.contract_fields()}
    return ModelContract(labels=splits.classes, **fields, provenance={"data": config.data, "seed": config.seed})
