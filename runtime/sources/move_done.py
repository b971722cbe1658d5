"""``--move-done DIR``: a classified file leaves the watched folder for DIR, keeping its path below the folder.

A move is a rename when DIR is on the same filesystem (atomic: the file is in one place or the other). Across
filesystems the file is copied to a hidden temporary in DIR, fsync'd, renamed into place, and only then removed
from the watched folder: a crash leaves it in the watched folder (moved again at the restart, since its row is
already durable) plus at most a hidden temporary in DIR, never half a file under its name. A name already taken
in DIR gets ``_1``, ``_2``... before its suffix (a camera trap reusing IMG_0001.JPG must not replace the first).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from edgecls.runtime.atomic import atomic_path
from edgecls.runtime.errors import EdgeclsError


def free_name(target: Path) -> Path:
    """``target``, or the first ``stem_N.suffix`` beside it that does not exist."""
    candidate, n = target, 1
    while os.path.lexists(candidate):
        candidate, n = target.with_name(f"{target.stem}_{n}{target.suffix}"), n + 1
    return candidate


def move_done(path: Path, root: Path, done_dir: Path) -> Path | None:
    """Move ``path`` (found under ``root``) to the same relative place under ``done_dir``; returns where it went,
    or None when it is gone already (deleted or moved by someone else after it was classified)."""
    target = free_name(done_dir / path.relative_to(root))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, target)
        return target
    except FileNotFoundError:
        if not os.path.lexists(path):
            return None
        raise EdgeclsError(f"--move-done: cannot create {target.parent}") from None
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise EdgeclsError(f"--move-done: cannot move {path} to {target} ({e.strerror or e})") from e
    with atomic_path(target) as tmp:  # another filesystem: copy whole and durable, then remove the original
        shutil.copyfile(path, tmp)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return target


def check_move_dir(done_dir: Path, roots: list[Path]) -> None:
    """DIR must not lie inside a watched folder (moved files would be found there again as new files)."""
    resolved = done_dir.resolve()
    for root in roots:
        if resolved == root.resolve() or root.resolve() in resolved.parents:
            raise EdgeclsError(f"--move-done {done_dir}: inside the watched folder {root}; choose a folder outside it")
