"""Atomic file writes: write to a temporary sibling, fsync, then rename over the target.

An interruption (Ctrl-C, kill, full disk) leaves either the old file or the new one, never half of one.
Every artifact edgecls writes (checkpoints, ONNX models, reports, logs) goes through here.

Temporary siblings are hidden and carry the writer's process id: ``.model.onnx.<pid>.<random>.tmp.onnx``.
A process killed mid-write (SIGKILL, power loss) cannot remove its own; the next write to the same target
removes those whose process is gone, so a re-run cleans up after the crash.
The published file gets the usual permissions (``0666 & ~umask``, or the mode of the file it replaces),
not the owner-only mode of the temporary file.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgecls.runtime.errors import EdgeclsError


def _current_umask() -> int:
    try:  # Linux: read it without changing it (os.umask is process-wide and racy with threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary siblings of ``target`` left by writers that no longer run; returns the removed."""
    target = Path(target)
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[^.]+\.tmp{re.escape(target.suffix)}$")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable (POSIX); not possible/needed on Windows.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on clean exit it is renamed onto ``target``.

    ``mode``: the published file's permissions (0o600 for a secret: the temporary file is owner-only from the
    start, so the secret is never readable by others, not even for a moment); None: as described above.
    The temporary name keeps the target's suffix (some writers choose the format from it). Any failure
    (full disk, read-only folder, an exception or Ctrl-C in the caller's block) removes the temporary file
    and leaves ``target`` as it was; OS errors become one :class:`EdgeclsError` line naming ``target``.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=f".tmp{target.suffix}", dir=target.parent
        )
    except OSError as e:
        raise EdgeclsError(f"cannot write {target}: {e.strerror or e}") from e
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if mode is None:
            try:
                mode = target.stat().st_mode & 0o7777
            except OSError:
                mode = 0o666 & ~_current_umask()
        with open(tmp, "rb+") as f:  # make the bytes durable before the rename publishes them
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as e:
        raise EdgeclsError(f"cannot write {target}: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes, mode: int | None = None) -> Path:
    with atomic_path(target, mode) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike[str], text: str, mode: int | None = None) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"), mode)
