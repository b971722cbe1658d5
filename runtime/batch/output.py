"""Where a batch table goes (``--out``): checked before any work, locked while a job runs, published whole.

A local RESULTS is refused (one line, exit 2) when writing it would go wrong later, after the work is done:

- RESULTS is a symbolic link (dangling, or to a folder): the rename that publishes the table would fail on it
  or replace the link, not write where it points. Give the real path.
- RESULTS is a file, or a folder holding files: a re-run never mixes two jobs' parts. With ``overwrite`` a
  folder holding only ``*.parquet`` files (an earlier table) is replaced when the new table is published;
  a folder holding anything else is never replaced.
- ``RESULTS.jsonl`` (``--jsonl``) exists: refused unless ``overwrite``; a folder there, always.

While a job runs it holds an exclusive ``fcntl.flock`` on ``.NAME.lock`` beside RESULTS (NAME as in
``NAME.jsonl``), taken before the checks: a second job writing the same RESULTS is refused at once instead of
racing the first to the rename. The kernel drops the lock with the process, so a killed job leaves no stale
lock; the (empty) lock file stays, since deleting it would let two jobs lock two different files. URIs
(``s3://...``) are written in place: no checks, no lock (object stores have neither rename nor flock).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgecls.runtime.batch.writers import is_uri, jsonl_path
from edgecls.runtime.errors import EdgeclsError


def local_target(out: str) -> Path:
    return Path(out.removeprefix("file://")).expanduser().absolute()


def _is_earlier_table(folder: Path) -> bool:
    """Only ``*.parquet`` files in it: what a batch job publishes (safe to replace with --overwrite)."""
    return all(e.is_file(follow_symlinks=False) and e.name.endswith(".parquet") for e in os.scandir(folder))


def _folder_or_nothing(out: str) -> Path:
    """RESULTS as a path that is a folder or does not exist yet (a link or a file there is refused)."""
    target = local_target(out)
    if target.is_symlink():
        where = "a dangling symbolic link" if not target.exists() else f"a symbolic link to {os.readlink(target)}"
        raise EdgeclsError(f"--out {out}: is {where}; give the folder's real path")
    if target.exists() and not target.is_dir():
        raise EdgeclsError(f"--out {out}: exists and is not a folder; remove it or choose another path")
    return target


def check_target(out: str, overwrite: bool) -> None:
    """Refuse a RESULTS folder that cannot be (re)written safely; see the module for the rules."""
    target = _folder_or_nothing(out)
    if not target.exists() or not any(target.iterdir()):
        return
    if not overwrite:
        raise EdgeclsError(f"--out {out}: already exists; remove it, choose another path or add --overwrite")
    if not _is_earlier_table(target):
        raise EdgeclsError(f"--out {out}: holds files other than a batch table's *.parquet; not replacing it")


def check_resumable(out: str) -> None:
    """``batch --watch``: RESULTS may hold the table an earlier watch wrote (it resumes from it), nothing else."""
    target = _folder_or_nothing(out)
    if target.is_dir() and not _is_earlier_table(target):
        raise EdgeclsError(f"--out {out}: holds files other than a batch table's *.parquet; not writing there")


def check_jsonl(out: str, overwrite: bool) -> None:
    target = Path(jsonl_path(str(local_target(out))))
    if target.is_dir() and not target.is_symlink():
        raise EdgeclsError(f"--jsonl: {target} is a folder; remove it or choose another --out")
    if os.path.lexists(target) and not overwrite:
        raise EdgeclsError(f"--jsonl: {target} already exists; remove it, choose another --out or add --overwrite")


def lock_path(out: str) -> Path:
    """``.NAME.lock`` beside RESULTS, NAME shared with ``NAME.jsonl`` (``a`` and ``a.parquet`` share one)."""
    base = Path(jsonl_path(str(local_target(out))))
    return base.with_name(f".{base.stem}.lock")


@contextlib.contextmanager
def claimed_output(out: str, jsonl: bool = False, overwrite: bool = False, resume: bool = False) -> Iterator[None]:
    """Hold the job's lock on RESULTS for the block, after checking RESULTS (and its .jsonl) can be written;
    ``resume`` (``--watch``): RESULTS may hold an earlier watch's table (:func:`check_resumable`)."""
    if is_uri(out):
        yield
        return
    lock = lock_path(out)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:
        raise EdgeclsError(f"--out {out}: cannot create its lock file {lock} ({e.strerror or e})") from e
    try:
        _lock_or_refuse(fd, out, lock)
        check_resumable(out) if resume else check_target(out, overwrite)
        if jsonl:
            check_jsonl(out, overwrite)
        yield
    finally:
        os.close(fd)  # releases the lock


def _lock_or_refuse(fd: int, out: str, lock: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the checks still run
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        raise EdgeclsError(f"--out {out}: another edgecls batch job is writing it (it holds {lock})") from e


@contextlib.contextmanager
def published_dir(out: str, overwrite: bool = False) -> Iterator[str]:
    """Yield the folder to write the table into; a local one appears at ``out`` only on success.

    RESULTS is checked again when the table is published (something else may have appeared there since the
    job started); an earlier table is replaced only with ``overwrite``.
    """
    if is_uri(out):
        yield out.rstrip("/")
        return
    check_target(out, overwrite)
    target = local_target(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
    except OSError as e:
        raise EdgeclsError(f"--out {out}: cannot create ({e.strerror or e})") from e
    try:
        yield str(tmp)
        check_target(out, overwrite)
        _publish(tmp, target, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, target: Path, out: str) -> None:
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    moved = False
    try:
        if target.exists():  # an empty folder, or an earlier table (overwrite; checked by the caller)
            os.rename(target, old)
            moved = True
        os.rename(tmp, target)
    except OSError as e:
        if moved:  # put the earlier table back rather than lose both
            with contextlib.suppress(OSError):
                os.rename(old, target)
                moved = False
        raise EdgeclsError(f"--out {out}: cannot publish the table ({e.strerror or e})") from e
    finally:
        if moved:
            shutil.rmtree(old, ignore_errors=True)
