"""Which notices about a model file this user has been told: each is printed once per file, not on every start.

A service restarted by systemd, a cron job or a shell loop used to print an int8 file's ~400-character verdict
on every start, and nothing could stop it. Now a :class:`~edgecls.runtime.terminal.int8_notices.ModelNotice` is printed
the first time this user meets that file (``run``, ``serve``, ``selftest``, ``bench``, ``eval``, ``batch``) and
remembered by the file's SHA-256, so a renamed or copied file is the same file and a re-exported one is a new
one. ``edgecls info MODEL`` always shows the notices in full; ``edgecls info MODEL --acknowledge`` records them
as read before any run prints them.

Memory: one small JSON file per model file, ``$XDG_STATE_HOME/edgecls/notices/<sha256>.json`` (default
``~/.local/state/edgecls``: the XDG Base Directory place for state that should persist across restarts but is
not worth backing up), written atomically. When it cannot be written (no home, a read-only file system) each
notice is printed once per process instead, and its line says why.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.file_digest import sha256_file
from edgecls.runtime.terminal.int8_notices import ModelNotice

SHOWN, ACKNOWLEDGED = "shown", "acknowledged"

_lock = threading.Lock()
_told_in_this_process: set[tuple[str, str]] = set()  # (model, kind): the fallback when nothing can be written
_digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256: hashed once per process


def state_dir() -> Path:
    """``$XDG_STATE_HOME/edgecls``, or ``~/.local/state/edgecls`` (a relative XDG_STATE_HOME is ignored, as the
    XDG Base Directory specification asks)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "edgecls"


def file_sha256(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        _digests[key] = sha256_file(p)
    return _digests[key]


def _record_path(sha256: str) -> Path:
    return state_dir() / "notices" / f"{sha256}.json"


def told(model: str | os.PathLike[str]) -> dict[str, str]:
    """kind -> ``shown`` | ``acknowledged`` for what this user was told about ``model`` ({} when nothing)."""
    try:
        text = _record_path(file_sha256(model)).read_text()
        record: Any = json.loads(text)
    except (OSError, RuntimeError, KeyError, ValueError):  # no record, no home, or a damaged file: nothing told
        return {}
    kinds = record.get("told") if isinstance(record, dict) else None
    return {str(k): str(v) for k, v in kinds.items()} if isinstance(kinds, dict) else {}


def remember(model: str | os.PathLike[str], kinds: Iterable[str], how: str = SHOWN) -> Path:
    """Record ``kinds`` of ``model`` as ``how``; returns the record's path. EdgeclsError when it cannot."""
    try:
        sha256 = file_sha256(model)
        path = _record_path(sha256)
    except (OSError, RuntimeError, KeyError) as e:  # Path.home() fails without HOME or a passwd entry
        raise EdgeclsError(f"cannot record what was shown about {model}: {e}") from e
    kinds_told = told(model)
    for kind in kinds:
        if kinds_told.get(kind) != ACKNOWLEDGED:
            kinds_told[kind] = how
    record = {"sha256": sha256, "model": str(Path(model).resolve()), "told": kinds_told}
    return atomic_write_text(path, json.dumps(record, indent=1) + "\n")


def _tell(model: str, kind: str) -> tuple[bool, str]:
    """(whether to print notice ``kind`` of ``model`` now, why it will be said again: "" when remembered)."""
    key = (model, kind)
    with _lock:
        if key in _told_in_this_process:
            return False, ""
        _told_in_this_process.add(key)
        if model == "<bytes>":  # a model given as bytes has no file to remember it by
            return True, ""
        if kind in told(model):
            return False, ""
        try:
            remember(model, [kind])
        except EdgeclsError:
            try:
                where = str(state_dir())
            except RuntimeError:  # no home directory at all
                where = "the state folder (XDG_STATE_HOME)"
            return True, f" (said at every start: {where} cannot be written)"
    return True, ""


def first_time(model: str, kind: str) -> bool:
    """Whether notice ``kind`` of ``model`` is new to this user (it is then remembered as shown)."""
    return _tell(model, kind)[0]


def line_to_print(message: Warning | str) -> str | None:
    """The line to print for a warning: a ModelNotice only the first time this user meets its file (then it is
    remembered), any other warning as it is. None: already told."""
    if not isinstance(message, ModelNotice):
        return str(message)
    new, why_again = _tell(message.model, message.notice.kind)
    return f"{message}{why_again}" if new else None


def lines_to_print(caught: Iterable[warnings.WarningMessage]) -> list[str]:
    """:func:`line_to_print` for each warning a ``catch_warnings(record=True)`` block caught, in order."""
    return [line for w in caught if (line := line_to_print(w.message)) is not None]
