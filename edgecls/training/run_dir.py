"""The run directory's files: checks before training starts, and JSON/CSV written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.errors import EdgeclsError


def prepare_run_dir(out: Path, resume: bool) -> None:
    if (out / "last.pt").exists() and not resume:
        raise EdgeclsError(
            f"{out} already holds a training run; pass --resume to continue it or choose another --out"
        )
    if resume and not (out / "last.pt").exists():
        raise EdgeclsError(f"{out}: nothing to resume (no last.pt)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgeclsError(f"cannot create output directory {out}: {e.strerror or e}") from e
    if not os.access(out, os.W_OK):
        raise EdgeclsError(f"output directory {out} is not writable")


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_history(out: Path, history: list[dict[str, Any]]) -> None:
    write_json(out / "history.json", history)
    cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
    lines = [",".join(cols)] + [
        ",".join(f"{h[c]:.6g}" if isinstance(h[c], float) else str(h[c]) for c in cols) for h in history
    ]
    atomic_write_text(out / "history.csv", "\n".join(lines) + "\n")
