"""``--watch``: classify the files that arrive in folders, each once, as they come, until stopped.

The loop polls the folders (:class:`~edgecls.runtime.sources.folder_watch.FolderWatcher`), classifies each chunk of
ready files through the same per-file path as ``edgecls run DIR`` (:meth:`SourceRun.images`: the guarded reader,
every limit, batched inference), commits the rows (:class:`~edgecls.runtime.sources.done_record.DoneRecord`: the
command's durable output, which is also the record a restart resumes from) and then, with ``--move-done``, moves
the committed files out. SIGINT/SIGTERM (turned into KeyboardInterrupt by
:class:`~edgecls.runtime.sources.stop_signals.StopSignals`) or the ``stop`` event end it: the rows written so far
are committed, their files moved, the sinks closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.sources.done_record import DoneRecord
from edgecls.runtime.sources.folder_watch import FileKey, FolderWatcher, ReadyFile
from edgecls.runtime.sources.move_done import check_move_dir, move_done
from edgecls.runtime.sources.records import RunSummary
from edgecls.runtime.sources.sinks import Sink
from edgecls.runtime.sources.source_loop import LoopOptions, SourceRun
from edgecls.runtime.sources.watch_options import WatchOptions


def watch_roots(sources: Sequence[str]) -> list[Path]:
    """The folders to watch: every SOURCE must be an existing folder."""
    if not sources:
        raise EdgeclsError("--watch needs one or more folders to watch")
    roots = [Path(s).expanduser() for s in sources]
    for arg, root in zip(sources, roots, strict=True):
        if not root.is_dir():
            raise EdgeclsError(f"--watch {arg}: not a folder (--watch watches folders)")
    return roots


class _Watch:
    def __init__(self, run: SourceRun, record: DoneRecord, roots: list[Path], options: WatchOptions) -> None:
        self.run, self.record, self.options = run, record, options
        self.watcher = FolderWatcher(roots, options.settle_s, record.done_keys())
        self.roots: dict[str, Path] = {}  # path -> the watched folder it is under, for files in flight

    def move_leftovers(self) -> None:
        """Files whose rows were committed before a kill but which were not moved yet."""
        if self.options.move_done is None:
            return
        for root, p in self.watcher.present():
            try:
                st = p.stat()
            except OSError:
                continue
            key = FileKey(str(p), st.st_size, st.st_mtime_ns)
            if key in self.watcher.done:  # the very version that has a row; a new file of that name waits its turn
                self.roots[key.path] = root
                self._move([key])

    def step(self) -> bool:
        """Classify what is ready now; False when nothing was."""
        ready = self.watcher.poll()
        for i in range(0, len(ready), self.options.chunk):
            chunk: list[ReadyFile] = ready[i : i + self.options.chunk]
            self.roots.update((r.key.path, r.root) for r in chunk)
            self.record.expect([r.key for r in chunk])
            self.run.images([r.key.path for r in chunk])
            self.commit(force=False)
            if self.run.stop.is_set():
                break
        return bool(ready)

    def commit(self, force: bool) -> None:
        keys = self.record.commit(force)
        self.watcher.mark_done(keys)
        self._move(keys)

    def _move(self, keys: list[FileKey]) -> None:
        if self.options.move_done is None:
            for key in keys:
                self.roots.pop(key.path, None)
            return
        for key in keys:
            move_done(Path(key.path), self.roots.pop(key.path), self.options.move_done)
        self.watcher.forget(keys)


def watch_folders(
    classifier: Classifier,
    roots: Sequence[Path],
    record: DoneRecord,
    sink: Sink,
    options: LoopOptions,
    watch: WatchOptions,
    stop: threading.Event | None = None,
) -> RunSummary:
    """Classify files arriving under ``roots`` until ``stop`` (or a KeyboardInterrupt); ``sink`` gets every row and
    includes ``record``. Returns the counts of this process's run."""
    roots = list(roots)
    if watch.move_done is not None:
        check_move_dir(watch.move_done, roots)
    run = SourceRun(classifier, options, sink, stop or threading.Event())
    t0 = time.perf_counter()
    run.summary.sources = len(roots)
    loop = _Watch(run, record, roots, watch)
    try:
        loop.move_leftovers()
        while not run.stop.is_set():
            if not loop.step():
                loop.commit(force=True)  # idle: nothing waits behind the rows written so far
                run.stop.wait(watch.poll_s)
    except KeyboardInterrupt:
        run.summary.interrupted = True
    finally:
        try:
            loop.commit(force=True)
        finally:
            run.summary.interrupted = True  # a watch only ends when it is stopped
            run.summary.elapsed_s = time.perf_counter() - t0
            sink.close(run.summary)
    return run.summary
