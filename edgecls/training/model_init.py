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
from edgecls.models.spec import ArchitectureSpec, WeightsSpec
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


@dataclass(frozen=True)
class ModelChoice:
    """The network a config names, looked up once: the registry and the weights' spec are read here and the
    result passed on (the contract and the model builder both need it)."""

    arch: str  # registry name, or USER_ARCH for --model
    spec: ArchitectureSpec | None  # the registry's entry; None for --model
    weights: WeightsSpec | None  # the ImageNet weights a built-in architecture fine-tunes from; None otherwise
    factory: str | None  # --model FILE.py:FACTORY with an absolute path; None for a built-in architecture

    def contract_fields(self) -> dict[str, Any]:
        """ModelContract fields the pretrained weights imply (their spec's partial contract; ``input_size`` as
        (S, S)); empty from scratch or for ``--model``."""
        return self.weights.contract.fields() if self.weights is not None else {}


def choose_model(config: TrainConfig) -> ModelChoice:
    """``config``'s network: ``--model``, or ``--arch`` (with its ImageNet weights when fine-tuning)."""
    if config.model is not None:
        return ModelChoice(USER_ARCH, None, None, absolute_factory_spec(config.model))
    spec = architecture(config.arch)
    if not config.fine_tuning:
        return ModelChoice(spec.name, spec, None, None)
    from edgecls.models.pretrained.sources import weights_spec

    return ModelChoice(spec.name, spec, weights_spec(spec), None)


def build_run_model(
    config: TrainConfig, num_classes: int, input_size: int, load_weights: bool, choice: ModelChoice | None = None
) -> RunModel:
    """The model to train (``choice``: :func:`choose_model`'s, looked up again when not given).
    ``load_weights=False`` (resume) builds the same network without reading weights: the checkpoint supplies
    them."""
    choice = choice or choose_model(config)
    if choice.spec is None:
        return _user_model(config, choice, num_classes, input_size, load_weights)
    model = build_model(choice.arch, num_classes, input_size, **config.arch_kwargs)
    kwargs = full_arch_kwargs(choice.arch, **config.arch_kwargs)
    if choice.weights is None:
        return RunModel(model, choice.arch, kwargs, None, None)
    if not load_weights:
        return RunModel(model, choice.arch, kwargs, choice.spec.head, None)
    from edgecls.models.pretrained.sources import load_arch_weights

    weights = load_arch_weights(choice.spec, config.weights, input_size)
    weights.load_into(model)
    return RunModel(model, choice.arch, kwargs, choice.spec.head, weights.provenance)


def _user_model(
    config: TrainConfig, choice: ModelChoice, num_classes: int, input_size: int, load_weights: bool
) -> RunModel:
    from edgecls.models.user_model import user_classifier

    assert choice.factory is not None
    # On resume the factory's own weights are replaced by the checkpoint's; --weights is not read again.
    model, head, provenance = user_classifier(
        choice.factory, num_classes, config.head, input_size, config.weights if load_weights else None
    )
    kwargs = {"model": choice.factory, "head": head}
    return RunModel(model, USER_ARCH, kwargs, head, provenance if load_weights else None)
