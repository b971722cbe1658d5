"""The fine-tuning recipe: what trains when, at which learning rate, with which BatchNorm behaviour.

From pretrained weights (``TrainConfig.fine_tuning``):
1. head warm-up (``head_epochs``, default 1): the backbone is frozen (no gradients, BatchNorm in eval mode)
   and only the new classifier head learns, so its random initial gradients cannot wreck the pretrained
   features;
2. then the whole network, the backbone at ``backbone_lr_scale`` (default 0.1) x the head's learning rate,
   ramped up over one epoch from the moment it unfreezes, then the same cosine decay as the head.
From scratch everything trains at one learning rate from the first step, as before.

The phase is a function of the epoch, so ``--resume`` continues in the right phase with no extra state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from edgecls.training.batchnorm import freeze_batchnorm_statistics
from edgecls.training.config import TrainConfig


@dataclass
class ParamGroups:
    """The parameters of the backbone and of the classifier head (empty from scratch: nothing is set apart)."""

    backbone: list[nn.Parameter]
    head: list[nn.Parameter]


def split_parameters(model: nn.Module, head: str | None) -> ParamGroups:
    """Parameters of the module named ``head`` vs all others (``head`` None: everything is backbone)."""
    head_ids = {id(p) for p in model.get_submodule(head).parameters()} if head else set()
    params = list(model.parameters())
    return ParamGroups([p for p in params if id(p) not in head_ids], [p for p in params if id(p) in head_ids])


def optimizer_groups(model: nn.Module, head: str | None, weight_decay: float) -> list[dict]:
    """[decay, no-decay] for the backbone, then the same for the head when there is one (fine-tuning).

    No weight decay on BatchNorm and bias parameters (ndim <= 1): standard for small CNNs; it only hurts them.
    """
    split = split_parameters(model, head)
    groups = []
    for params in (split.backbone, split.head) if head else (split.backbone,):
        groups.append({"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay})
        groups.append({"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0})
    return groups


def cosine_with_warmup(total_steps: int, warmup_steps: int, start: int = 0) -> Callable[[int], float]:
    """LR factor: 0 before ``start``, linear warm-up over ``warmup_steps``, cosine to 1% at ``total_steps``."""

    def f(step: int) -> float:
        if step < start:
            return 0.0
        if step - start < warmup_steps:
            return (step - start + 1) / warmup_steps
        progress = (step - start - warmup_steps) / max(1, total_steps - start - warmup_steps)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


def lr_lambdas(config: TrainConfig, steps_per_epoch: int) -> list[Callable[[int], float]]:
    """One LR factor function per optimizer group (see optimizer_groups)."""
    total = steps_per_epoch * config.epochs
    warmup = max(1, int(config.warmup_epochs * steps_per_epoch))
    head = cosine_with_warmup(total, warmup)
    if not config.fine_tuning:
        return [head, head]
    unfreeze = int(round(config.resolved_head_epochs() * steps_per_epoch))
    base = cosine_with_warmup(total, max(1, steps_per_epoch), start=unfreeze)
    scale = config.backbone_lr_scale

    def backbone(step: int) -> float:
        return scale * base(step)

    return [backbone, backbone, head, head]


def head_only(config: TrainConfig, epoch: int) -> bool:
    """True while the backbone is frozen (the head warm-up epochs of a fine-tuning run)."""
    return config.fine_tuning and epoch < config.resolved_head_epochs()


def set_training_mode(model: nn.Module, head: str | None, config: TrainConfig, epoch: int) -> None:
    """``model.train()`` plus the epoch's freezing: backbone gradients off during the head warm-up, and
    BatchNorm statistics kept (eval mode) whenever the backbone is frozen or ``batchnorm == "frozen"``."""
    model.train()
    frozen = head_only(config, epoch)
    for p in split_parameters(model, head).backbone:
        p.requires_grad_(not frozen)
    if frozen or config.resolved_batchnorm() == "frozen":
        freeze_batchnorm_statistics(model)
