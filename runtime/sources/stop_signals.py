"""SIGINT and SIGTERM end an ``edgecls run`` (or a watching ``edgecls batch``) cleanly, and the exit status says
which one it was.

The first signal becomes a ``KeyboardInterrupt`` in the main thread: the source loop catches it, stops the
capture threads and closes every sink (files flushed and published). A second signal while that cleanup runs
means the user insists: the process leaves at once. Exit status after a signal is ``128 + signal number``
(130 for SIGINT, 143 for SIGTERM), the shell's convention.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType


class StopSignals:
    """While entered (from the main thread only), SIGINT/SIGTERM raise ``KeyboardInterrupt``; the old
    handlers come back on exit. :attr:`received` is the first signal number, or None."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, object] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:  # first signal: unwind, stop the sources, flush and publish outputs
            self.received = signum
            raise KeyboardInterrupt
        os._exit(128 + signum)  # a second one while cleaning up: the user insists, leave now

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]

    @property
    def exit_code(self) -> int:
        """128 + the signal received; 130 (Ctrl-C) when the interrupt came another way."""
        return 128 + int(self.received) if self.received is not None else 130
