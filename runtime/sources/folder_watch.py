"""Which files in watched folders are ready to classify: written completely, and not classified yet.

A file is taken once its writer has finished, judged two ways:

- **Settled**: its size and modification time have not changed for ``settle_s`` seconds of polling. A writer that
  pauses longer than that mid-file would be read early, so ``--settle`` must exceed the writer's longest pause.
- **Not open for writing** (Linux, files this user owns): a read lease (``fcntl F_SETLEASE F_RDLCK``) is refused
  with EAGAIN while any process has the file open for writing (fcntl(2)), so a writer that pauses longer than the
  settle interval but keeps its file open is still waited for. Where leases are refused for another reason (a file
  owned by someone else, a filesystem without leases) the settle interval alone decides. The lease is held for
  the two calls of the probe; a writer opening the file in between waits for its release, and the kernel tells
  the lease holder with a signal: SIGIO by default, whose default action ends the process, so the probe asks for
  SIGURG instead (``F_SETSIG``; ignored by default).

Files are found by the folder walk ``run DIR`` uses (:func:`edgecls.runtime.images.files.walk_images`: recursive,
image suffixes only, hidden entries skipped), so a writer that writes ``.name.tmp`` or ``name.part`` and renames it
into place at the end is seen only once it is whole. Polling rather than inotify: the settle rule needs the polling
anyway (a closed file is not a finished one when its writer reopens it: FTP resumes, chunked copies), the standard
library has no inotify, and a poll costs one walk and one ``stat`` per waiting file.

A file is identified by its path, size and modification time (:class:`FileKey`): one that is rewritten after it
was classified is a new file and is classified again; the same name dropped again after ``--move-done`` moved the
first one away is a new file too.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgecls.runtime.images.files import walk_images


@dataclass(frozen=True)
class FileKey:
    """One version of one file: what the record of done files holds."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ReadyFile:
    key: FileKey
    root: Path  # the watched folder it was found under (--move-done keeps the path relative to it)


def open_for_writing(path: str) -> bool | None:
    """True while some process has ``path`` open for writing; None when this cannot be known here."""
    if not sys.platform.startswith("linux"):
        return None
    import errno
    import fcntl
    import signal

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, int(signal.SIGURG))  # a lease break must not be SIGIO (see the module)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as e:
        return True if e.errno == errno.EAGAIN else None  # EACCES (not ours), EINVAL (no leases here)
    else:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


class FolderWatcher:
    """Polls ``roots`` and hands out each settled file once (:meth:`poll`); ``done`` keys are never handed out."""

    def __init__(
        self,
        roots: Sequence[Path],
        settle_s: float,
        done: Iterable[FileKey] = (),
        clock: Callable[[], float] = time.monotonic,
        writer_check: Callable[[str], bool | None] = open_for_writing,
    ) -> None:
        self.roots = [Path(r) for r in roots]
        self.settle_s = settle_s
        self.done: set[FileKey] = set(done)
        self._clock = clock
        self._writer_check = writer_check
        self._seen: dict[str, tuple[int, int, float]] = {}  # path -> (size, mtime_ns, first seen with them)
        self._handed: set[FileKey] = set()  # handed out, not yet marked done (in the classifier's hands)

    def present(self) -> list[tuple[Path, Path]]:
        """(root, file) for every image file under the roots now."""
        return [(root, p) for root in self.roots for p in walk_images(root, follow_links=False)]

    def poll(self) -> list[ReadyFile]:
        """The files that became ready since the last poll, in path order."""
        now = self._clock()
        ready: list[ReadyFile] = []
        alive: set[str] = set()
        for root, p in self.present():
            path = str(p)
            alive.add(path)
            try:
                st = os.stat(path)
            except OSError:  # gone between the walk and the stat, or a dangling link: the reader will say so
                continue
            key = FileKey(path, st.st_size, st.st_mtime_ns)
            if key in self.done or key in self._handed:
                continue
            seen = self._seen.get(path)
            if seen is None or seen[:2] != (st.st_size, st.st_mtime_ns):
                self._seen[path] = (st.st_size, st.st_mtime_ns, now)
                if self.settle_s > 0:
                    continue
            elif now - seen[2] < self.settle_s:
                continue
            if self._writer_check(path):
                continue
            ready.append(ReadyFile(key, root))
            self._handed.add(key)
        for path in set(self._seen) - alive:  # moved or deleted before it settled
            del self._seen[path]
        return ready

    def mark_done(self, keys: Iterable[FileKey]) -> None:
        for key in keys:
            self._handed.discard(key)
            self.done.add(key)
            self._seen.pop(key.path, None)

    def forget(self, keys: Iterable[FileKey]) -> None:
        """Keys that left the folder (moved by --move-done): a new file under the same name starts afresh."""
        for key in keys:
            self.done.discard(key)
