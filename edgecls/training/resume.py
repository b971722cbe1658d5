"""Starting a run or continuing one: which config runs, and the training state ``last.pt`` hands back.

A new run trains the config it is given, its augmentation being the data's default with the caller's
overrides on top. ``resume=True`` on a run directory that holds a config.json continues *that* run: the saved
config wins over anything given (the run must go on exactly as it started), only ``out`` and ``resume`` are
taken from the request. What the loop needs from ``last.pt`` (epoch, best accuracy, early-stopping count,
history, optimizer and scheduler state) is restored by :func:`restore_training_state`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgecls.data.augment import AugmentConfig
from edgecls.training.checkpoint import load_checkpoint
from edgecls.training.config import TrainConfig
from edgecls.training.evaluate_run import Logger


@dataclass(frozen=True)
class AugmentOverrides:
    """Augmentation settings a user gave; None keeps the data's default (see TrainConfig.resolved_augment)."""

    hflip: bool | None = None
    noise_std: float | None = None  # gaussian noise std on the 0-255 scale, 0 = off
    jitter: float | None = None  # colour jitter strength, 0 = off

    def apply(self, base: AugmentConfig) -> AugmentConfig:
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}
        return dataclasses.replace(base, **given)


def config_to_run(config: TrainConfig, augment: AugmentOverrides | None = None) -> TrainConfig:
    """The config :func:`train_or_resume` trains: the saved one when resuming, else ``config`` + ``augment``."""
    saved = Path(config.out) / "config.json"
    if config.resume and saved.is_file():
        return dataclasses.replace(TrainConfig.from_dict(json.loads(saved.read_text())), resume=True, out=config.out)
    return dataclasses.replace(config, augment=(augment or AugmentOverrides()).apply(config.resolved_augment()))


def train_or_resume(
    config: TrainConfig, augment: AugmentOverrides | None = None, log: Logger | None = None, show_progress: bool = True
) -> Path:
    """What ``edgecls train`` does: train (or resume) the run :func:`config_to_run` describes; -> run directory."""
    from edgecls.training.train import train

    return train(config_to_run(config, augment), log=log, show_progress=show_progress)


@dataclass
class TrainingState:
    """Where a run's loop stands: the next epoch, the best validation accuracy and the early-stopping count."""

    start_epoch: int = 0
    best_acc: float = -1.0
    stale: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    pretrained: dict[str, Any] | None = None  # provenance of the weights the run started from


def restore_training_state(
    last: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler
) -> TrainingState:
    """Load ``last.pt``'s weights, optimizer and scheduler state in place; -> the loop's state."""
    ckpt = load_checkpoint(last)
    model.load_state_dict(ckpt.model_state)
    optimizer.load_state_dict(ckpt.raw["optimizer_state"])
    scheduler.load_state_dict(ckpt.raw["scheduler_state"])
    return TrainingState(
        start_epoch=int(ckpt.raw["epoch"]) + 1,
        best_acc=float(ckpt.raw["best_metric"]),
        stale=int(ckpt.raw.get("stale_epochs", 0)),
        history=list(ckpt.raw.get("history", [])),
        pretrained=ckpt.contract.provenance.get("pretrained"),
    )
