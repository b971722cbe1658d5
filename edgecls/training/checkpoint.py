"""Checkpoints carry everything needed to rebuild and export the model (nanoGPT-style config-with-weights).

Layout of a checkpoint (``torch.save`` of a dict):
    format="edgecls.checkpoint", format_version=1,
    arch, arch_kwargs, contract (ModelContract.to_dict()), train_config (dict),
    model_state, epoch (last completed, 0-based), best_metric, metrics (dict of the epoch's numbers),
    optimizer_state, scheduler_state, rng_state (for --resume), data (how to rebuild the split).
A run directory holds ``best.pt`` (best validation accuracy), ``last.pt`` (for resume), ``config.json``,
``contract.json``, ``split.json``, ``history.csv``/``history.json``, ``curves.png`` and ``eval/``.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgecls.runtime.atomic import atomic_write_bytes
from edgecls.runtime.contract import ModelContract
from edgecls.runtime.errors import EdgeclsError

FORMAT = "edgecls.checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    path: Path
    arch: str
    arch_kwargs: dict[str, Any]
    contract: ModelContract
    model_state: dict[str, torch.Tensor]
    raw: dict[str, Any]
    sha256: str

    def build_model(self) -> nn.Module:
        """The trained model in eval mode, on CPU."""
        from edgecls.models import build_model

        model = build_model(
            self.arch, self.contract.num_classes, self.contract.input_size[0], **self.arch_kwargs
        )
        model.load_state_dict(self.model_state)
        return model.eval()


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Atomically write a checkpoint dict (``format`` fields are added)."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def resolve_checkpoint_path(run_or_checkpoint: str | os.PathLike[str]) -> Path:
    """A run directory means its ``best.pt``; a file is taken as it is."""
    p = Path(run_or_checkpoint)
    if p.is_dir():
        for name in ("best.pt", "last.pt"):
            if (p / name).is_file():
                return p / name
        raise EdgeclsError(f"{p}: run directory has no best.pt or last.pt checkpoint")
    if not p.exists():
        raise EdgeclsError(f"{p}: no such checkpoint or run directory")
    return p


def load_checkpoint(run_or_checkpoint: str | os.PathLike[str]) -> Checkpoint:
    path = resolve_checkpoint_path(run_or_checkpoint)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EdgeclsError(f"{path}: cannot read checkpoint ({e.strerror or e})") from e
    try:
        raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for corrupt archives
        raise EdgeclsError(
            f"{path}: not a readable checkpoint (corrupt or truncated: {type(e).__name__})"
        ) from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise EdgeclsError(
            f"{path}: not an edgecls checkpoint (use `edgecls export --model` for other models)"
        )
    if int(raw.get("format_version", 0)) > FORMAT_VERSION:
        raise EdgeclsError(
            f"{path}: checkpoint format {raw.get('format_version')} is newer than this edgecls"
        )
    try:
        contract = ModelContract.from_dict(raw["contract"])
        return Checkpoint(
            path=path,
            arch=raw["arch"],
            arch_kwargs=dict(raw.get("arch_kwargs", {})),
            contract=contract,
            model_state=raw["model_state"],
            raw=raw,
            sha256=hashlib.sha256(data).hexdigest(),
        )
    except KeyError as e:
        raise EdgeclsError(f"{path}: checkpoint lacks field {e}") from e
