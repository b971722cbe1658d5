"""The run directory's files: checks before training starts, and JSON/CSV written atomically."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def removed_if_failed(out: Path, resume: bool) -> Iterator[None]:
    """Undo a new run's folder when the run fails before its first epoch is saved (bad data, missing extra,
    a model that does not build): a failed ``edgecls train`` must not leave an empty run behind that the next
    attempt trips over. Only what this run created goes: the folders it made (the first missing ancestor of
    ``out`` down), or, in a folder that existed before, the files it wrote. A run with a ``last.pt`` is kept:
    it can be resumed."""
    first_new = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
    before = set(out.iterdir()) if out.is_dir() else set()
    try:
        yield
    except BaseException:
        if not resume and not (out / "last.pt").exists():
            if first_new is not None:
                shutil.rmtree(first_new, ignore_errors=True)
            elif out.is_dir():
                for path in set(out.iterdir()) - before:
                    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_history(out: Path, history: list[dict[str, Any]]) -> None:
    write_json(out / "history.json", history)
    cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
    lines = [",".join(cols)] + [
        ",".join(f"{h[c]:.6g}" if isinstance(h[c], float) else str(h[c]) for c in cols) for h in history
    ]
    atomic_write_text(out / "history.csv", "\n".join(lines) + "\n")
