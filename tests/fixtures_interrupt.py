"""Interrupting a child at an exact moment: DirWatch sees a file appear, kill_now SIGKILLs; a child started with
HOLD_AT_WRITE (held_env, held_edgecls_cmd) stops for good at that file's write, so the kill cannot come late."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fixtures_reliability import edgecls_env

_IN_CREATE, _IN_MOVED_TO = 0x100, 0x80


class DirWatch:
    """Report files created in (or renamed into) one folder, as they happen (inotify; polling elsewhere).

    Used to SIGKILL a process at an exact moment: the instant its temporary checkpoint/model file appears
    (mid-write) or the instant a result file is published (the next epoch has begun).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None
        self._seen: set[str] = set(os.listdir(folder))
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_CLOEXEC)
            if fd >= 0 and libc.inotify_add_watch(fd, str(folder).encode(), _IN_CREATE | _IN_MOVED_TO) >= 0:
                self._fd = fd
        except (OSError, AttributeError):
            self._fd = None

    def _events(self, timeout: float) -> list[str]:
        import select
        import struct

        if self._fd is None:  # polling fallback
            import time

            time.sleep(min(timeout, 0.002))
            now = set(os.listdir(self.folder))
            new, self._seen = sorted(now - self._seen), now
            return new
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return []
        buf, names, pos = os.read(self._fd, 65536), [], 0
        while pos + 16 <= len(buf):
            _wd, _mask, _cookie, length = struct.unpack_from("iIII", buf, pos)
            names.append(buf[pos + 16 : pos + 16 + length].rstrip(b"\0").decode())
            pos += 16 + length
        return names

    def wait_for(self, predicate, proc: subprocess.Popen, timeout: float = 60.0) -> str:
        """Block until a new name satisfies ``predicate``; fail if ``proc`` exits or time runs out first."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in self._events(0.05):
                if predicate(name):
                    return name
            if proc.poll() is not None:
                raise AssertionError(f"process ended (rc {proc.returncode}) before the awaited moment")
        raise AssertionError("timed out waiting for the awaited file event")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def kill_now(proc: subprocess.Popen) -> int:
    """SIGKILL (no handler can run: the harshest interruption) and reap; returns the exit status."""
    import signal

    proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=30)


#: Code a child runs first: os.replace, through which runtime/atomic.py publishes every file edgecls writes, blocks
#: the process for good just before publishing the file named by EDGECLS_TEST_HOLD_BEFORE, or just after publishing
#: EDGECLS_TEST_HOLD_AFTER. A SIGKILL sent when DirWatch sees that file then lands at that point for certain: without
#: the hold the kill raced the writer, and a loaded box could let it publish (or begin the next epoch) first.
HOLD_AT_WRITE = """
import os as _os, threading as _threading
_replace = _os.replace
_before, _after = _os.environ.get("EDGECLS_TEST_HOLD_BEFORE"), _os.environ.get("EDGECLS_TEST_HOLD_AFTER")
def _held_replace(src, dst, *args, **kwargs):
    if _os.path.basename(dst) == _before:
        _threading.Event().wait()
    _replace(src, dst, *args, **kwargs)
    if _os.path.basename(dst) == _after:
        _threading.Event().wait()
_os.replace = _held_replace
"""


def held_env(before: str | None = None, after: str | None = None) -> dict[str, str]:
    """edgecls_env() for a child started with HOLD_AT_WRITE: where it stops (a file name), if anywhere."""
    env = edgecls_env()
    for key, name in (("EDGECLS_TEST_HOLD_BEFORE", before), ("EDGECLS_TEST_HOLD_AFTER", after)):
        if name:
            env[key] = name
    return env


def held_edgecls_cmd(*args: str) -> list[str]:
    """``edgecls ARGS`` (the console entry point) in a child that honours held_env()'s hold."""
    main = "import sys\nfrom edgecls.cli import main\nsys.argv = ['edgecls', *sys.argv[1:]]\nmain()\n"
    return [sys.executable, "-c", HOLD_AT_WRITE + main, *args]
