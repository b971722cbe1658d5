"""Releases side by side under the install prefix, and the ``current`` link the service runs through::

    PREFIX/releases/<id>/        models/, manifest.json, SHA256SUMS[.sig] of the bundle, venv -> ../../venvs/<h>
    PREFIX/venvs/<h>/            one venv per wheel set (h: first 16 hex of sha256(requirements.txt))
    PREFIX/current -> releases/<id>
    PREFIX/pending.json          while an update is being tried: {"new": id, "previous": id}

The link is swapped atomically (a new link beside it renamed over it, as ``ln -s new tmp && mv -T tmp current``):
a reader sees the old release or the new one, never none. Release ids sort by time.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.errors import EdgeclsError

#: Releases kept: the one running and the one before it (the rollback target).
KEEP_RELEASES = 2
VENV_HASH_CHARS = 16
#: The hashed requirements of a bundle's wheels (its sha256 names the venv they are installed in).
REQUIREMENTS_NAME = "requirements.txt"


@dataclass(frozen=True)
class Layout:
    prefix: Path

    @property
    def releases(self) -> Path:
        return self.prefix / "releases"

    @property
    def venvs(self) -> Path:
        return self.prefix / "venvs"

    @property
    def current(self) -> Path:
        return self.prefix / "current"

    @property
    def pending(self) -> Path:
        return self.prefix / "pending.json"

    def venv_for(self, requirements_sha256: str) -> Path:
        """The venv of a wheel set (install.sh names it the same way: `sha256sum requirements.txt | cut -c1-16`)."""
        return self.venvs / requirements_sha256[:VENV_HASH_CHARS]

    def current_id(self) -> str | None:
        try:
            return Path(os.readlink(self.current)).name
        except OSError:
            return None

    def release(self, release_id: str) -> Path:
        return self.releases / release_id

    def release_venv(self, release_id: str) -> Path:
        """The venv a release runs with (its ``venv`` link, resolved)."""
        return (self.release(release_id) / "venv").resolve()


def new_release_id(layout: Layout, bundle_sha256: str) -> str:
    """``20261207T101502Z-<8 hex of the bundle's SHA256SUMS>``; a suffix when that second is taken."""
    base = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{bundle_sha256[:8]}"
    candidate, n = base, 1
    while layout.release(candidate).exists():
        candidate, n = f"{base}.{n}", n + 1
    return candidate


def switch_current(layout: Layout, release_id: str) -> None:
    """Point ``current`` at ``releases/<release_id>`` atomically."""
    if not layout.release(release_id).is_dir():
        raise EdgeclsError(f"{layout.release(release_id)}: no such release")
    tmp = layout.prefix / f".current.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(f"releases/{release_id}", tmp)
    os.replace(tmp, layout.current)


def mark_pending(layout: Layout, new: str, previous: str | None) -> None:
    atomic_write_text(layout.pending, json.dumps({"new": new, "previous": previous}))


def read_pending(layout: Layout) -> dict[str, str | None] | None:
    try:
        data = json.loads(layout.pending.read_text())
        return {"new": data.get("new"), "previous": data.get("previous")}
    except (OSError, ValueError, AttributeError):
        return None


def remove_release(layout: Layout, release_id: str) -> None:
    shutil.rmtree(layout.release(release_id), ignore_errors=True)


def prune(layout: Layout, keep: tuple[str | None, ...]) -> list[str]:
    """Remove releases not in ``keep`` (the current one and its predecessor) and venvs no kept release uses."""
    kept = {k for k in keep if k}
    removed = []
    for path in sorted(layout.releases.glob("*")) if layout.releases.is_dir() else []:
        if path.name not in kept:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    used = {layout.release_venv(k) for k in kept if layout.release(k).is_dir()}
    for venv in sorted(layout.venvs.glob("*")) if layout.venvs.is_dir() else []:
        if venv.resolve() not in used:
            shutil.rmtree(venv, ignore_errors=True)
    return removed
