"""The network a run starts from: a built-in architecture from scratch, the same with ImageNet weights, or a
user's own pretrained torch model with its classifier head replaced for the data's classes.

Also what the weights decide about the contract: fine-tuning feeds the preprocessing the weights were trained
with (their spec's partial contract: mean/std, interpolation, crop, resolution) unless contract flags say
otherwise (run_contract.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from edgecls.models.registry import USER_ARCH, architecture, build_model
from edgecls.models.registry import arch_kwargs as full_arch_kwargs
from edgecls.training.config import TrainConfig


@dataclass
class RunModel:
    model: nn.Module
    arch: str  # registry name, or "user" for --model
    arch_kwargs: dict[str, Any]  # everything build_model needs to rebuild it (checkpoint, export)
    head: str | None  # the classifier module fine-tuning treats apart; None from scratch
    pretrained: dict[str, Any] | None  # provenance of the starting weights: {weights, source, sha256}


def absolute_factory_spec(spec: str) -> str:
    """``dir/file.py:FACTORY`` with an absolute path, so export and eval find it from any directory."""
    target, sep, attr = spec.rpartition(":")
    if sep and target.endswith(".py"):
        return f"{Path(target).resolve()}:{attr}"
    return spec


def weights_contract_fields(config: TrainConfig) -> dict[str, Any]:
    """ModelContract fields the pretrained weights of a built-in architecture imply (its spec's partial
    contract; ``input_size`` as (S, S)); empty from scratch or for ``--model``."""
    if not config.fine_tuning or config.model is not None:
        return {}
    from edgecls.models.pretrained.sources import weights_spec

    return weights_spec(config.arch).contract.fields()


def build_run_model(config: TrainConfig, num_classes: int, input_size: int, load_weights: bool) -> RunModel:
    """The model to train. ``load_weights=False`` (resume) builds the same network without reading weights:
    the checkpoint supplies them."""
    if config.model is not None:
        return _user_model(config, num_classes, input_size, load_weights)
    model = build_model(config.arch, num_classes, input_size, **config.arch_kwargs)
    kwargs = full_arch_kwargs(config.arch, **config.arch_kwargs)
    if not config.fine_tuning:
        return RunModel(model, config.arch, kwargs, None, None)
    from edgecls.models.pretrained.sources import load_pretrained

    head = architecture(config.arch).head
    if not load_weights:
        return RunModel(model, config.arch, kwargs, head, None)
    weights = load_pretrained(config.arch, config.weights, input_size)
    weights.load_into(model)
    return RunModel(model, config.arch, kwargs, head, weights.provenance)


def _user_model(config: TrainConfig, num_classes: int, input_size: int, load_weights: bool) -> RunModel:
    from edgecls.models.user_model import user_classifier

    assert config.model is not None
    spec = absolute_factory_spec(config.model)
    # On resume the factory's own weights are replaced by the checkpoint's; --weights is not read again.
    model, head, provenance = user_classifier(
        spec, num_classes, config.head, input_size, config.weights if load_weights else None
    )
    kwargs = {"model": spec, "head": head}
    return RunModel(model, USER_ARCH, kwargs, head, provenance if load_weights else None)
