"""Starting a run or continuing one: which config runs (the restored loop state is training_state.py's job).

A new run trains the config it is given, its augmentation being the data's default with the caller's
overrides on top. ``resume=True`` on a run directory that holds a config.json continues *that* run: the saved
config wins over anything given (the run must go on exactly as it started), only ``out`` and ``resume`` are
taken from the request.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from edgecls.data.augment import AugmentConfig
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
    config: TrainConfig,
    augment: AugmentOverrides | None = None,
    log: Logger | None = None,
    show_progress: bool = True,
    trust_checkpoint: bool = False,
) -> Path:
    """What ``edgecls train`` does: train (or resume) the run :func:`config_to_run` describes; -> run directory.

    ``trust_checkpoint`` lets a resumed ``last.pt`` run code while it loads (``--trust-checkpoint``)."""
    from edgecls.training.train import train

    return train(
        config_to_run(config, augment), log=log, show_progress=show_progress, trust_checkpoint=trust_checkpoint
    )
