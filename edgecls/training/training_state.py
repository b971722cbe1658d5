"""Where a run's loop stands, and restoring it from ``last.pt`` when a run continues.

What the loop needs from ``last.pt`` (epoch, best accuracy, early-stopping count, history, optimizer and
scheduler state) is restored by :func:`restore_training_state`; :mod:`edgecls.training.resume` decides
whether a run continues, :mod:`edgecls.training.train` runs the loop from the state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgecls.training.checkpoint import load_checkpoint


@dataclass
class TrainingState:
    """Where a run's loop stands: the next epoch, the best validation accuracy and the early-stopping count."""

    start_epoch: int = 0
    best_acc: float = -1.0
    best_loss: float = math.inf  # the best epoch's validation loss (breaks accuracy ties)
    stale: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    pretrained: dict[str, Any] | None = None  # provenance of the weights the run started from


def restore_training_state(
    last: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    trust: bool = False,
) -> TrainingState:
    """Load ``last.pt``'s weights, optimizer and scheduler state in place; -> the loop's state.

    ``trust`` lets the file run code while it loads (``--trust-checkpoint``)."""
    ckpt = load_checkpoint(last, trust=trust)
    model.load_state_dict(ckpt.model_state)
    optimizer.load_state_dict(ckpt.raw["optimizer_state"])
    scheduler.load_state_dict(ckpt.raw["scheduler_state"])
    return TrainingState(
        start_epoch=int(ckpt.raw["epoch"]) + 1,
        best_acc=float(ckpt.raw["best_metric"]),
        best_loss=float(ckpt.raw.get("best_val_loss", math.inf)),  # older runs: the next tie wins, as it did
        stale=int(ckpt.raw.get("stale_epochs", 0)),
        history=list(ckpt.raw.get("history", [])),
        pretrained=ckpt.contract.provenance.get("pretrained"),
    )
