"""Checkpoints carry everything needed to rebuild and export the model (nanoGPT-style config-with-weights).

Layout of a checkpoint (``torch.save`` of a dict):
    format="edgecls.checkpoint", format_version=1,
    arch, arch_kwargs, contract (ModelContract.to_dict()), train_config (dict),
    model_state, epoch (last completed, 0-based), best_metric, metrics (dict of the epoch's numbers),
    optimizer_state, scheduler_state, rng_state (for --resume), data (how to rebuild the split).
A run directory holds ``best.pt`` (best validation accuracy), ``last.pt`` (for resume), ``config.json``,
``contract.json``, ``split.json``, ``history.csv``/``history.json``, ``curves.png`` and ``eval/``.

Loading never runs code from the file unless the caller says it trusts the file: a pickle can name any
function to call while it loads (``os.system`` included), so checkpoints load with torch's
``weights_only=True`` unpickler, which rebuilds only tensors and plain containers/numbers/strings. Everything
edgecls writes is such a dict (:func:`plain` enforces it at save time); a legacy or foreign file that needs
more is refused with one line naming the object it wanted, unless ``trust=True`` (``--trust-checkpoint``).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgecls.runtime.atomic import atomic_write_bytes
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import EdgeclsError

FORMAT = "edgecls.checkpoint"
FORMAT_VERSION = 1
#: What the refusal tells the user to pass; the CLI flags share the name.
TRUST_FLAG = "--trust-checkpoint"
# Leaves torch's weights_only unpickler rebuilds without running code from the file.
_LEAVES = (str, int, float, bool, type(None), torch.Tensor, torch.dtype, torch.Size, torch.device)


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
        from edgecls.models.registry import build_model

        model = build_model(
            self.arch, self.contract.num_classes, self.contract.input_size[0], **self.arch_kwargs
        )
        model.load_state_dict(self.model_state)
        return model.eval()


def plain(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` as tensors inside dicts/lists/tuples of str/int/float/bool/None, which load with ``weights_only``.

    Paths become strings, dataclasses dicts, enums their values and numpy scalars/arrays Python numbers/tensors
    (exactly: float64 -> float, int64 -> int), so a resumed run continues from the same numbers. Anything else
    is a programming error, raised here rather than written into a file no one could load safely.
    """
    if isinstance(obj, np.generic):  # first: numpy's float64 is a float subclass, yet pickles as numpy
        return obj.item()
    if isinstance(obj, _LEAVES):
        return obj
    if isinstance(obj, dict):
        return {plain(k, where): plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, enum.Enum):
        return plain(obj.value, where)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return plain(dataclasses.asdict(obj), where)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, (set, frozenset)):
        return sorted(plain(v, where) for v in obj)
    raise TypeError(f"{where}: {type(obj).__name__} cannot be saved in a checkpoint (not plain data)")


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Atomically write a checkpoint dict (``format`` fields are added) that loads with ``weights_only=True``."""
    buf = io.BytesIO()
    torch.save(plain({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}), buf)
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


def _needs_code(error: pickle.UnpicklingError) -> str | None:
    """What a weights-only load refused to rebuild (e.g. ``posix.system``), or None for a corrupt pickle."""
    text = str(error)
    if "weights only" not in text.lower() and "weights_only" not in text:
        return None
    found = re.search(r"GLOBAL ([\w.]+)", text)  # torch names the function or class the pickle asked for
    return found.group(1) if found else None


def _unpickle(path: Path, data: bytes, trust: bool) -> Any:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        wanted = None if trust else _needs_code(e)
        if wanted is not None:
            raise EdgeclsError(
                f"{path}: refused: the checkpoint needs {wanted} to load, and loading it would run code from the "
                f"file (a legacy or foreign checkpoint?); pass {TRUST_FLAG} only if you trust its source"
            ) from None
        raise EdgeclsError(f"{path}: not a readable checkpoint (corrupt or truncated: UnpicklingError)") from None
    except Exception as e:  # torch raises many types for corrupt archives
        raise EdgeclsError(
            f"{path}: not a readable checkpoint (corrupt or truncated: {type(e).__name__})"
        ) from e


def load_checkpoint(run_or_checkpoint: str | os.PathLike[str], trust: bool = False) -> Checkpoint:
    """The checkpoint in a run directory or file; ``trust`` lets the file run code while it loads (opt-in)."""
    path = resolve_checkpoint_path(run_or_checkpoint)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EdgeclsError(f"{path}: cannot read checkpoint ({e.strerror or e})") from e
    raw = _unpickle(path, data, trust)
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
