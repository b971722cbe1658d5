"""The record of files a watch has classified: its own durable output, so that a restart neither redoes nor loses one.

A watching command's durable output *is* its record: ``run --watch``'s CSV (appended, fsync'd) and ``batch
--watch``'s Parquet parts (each published whole). A file counts as done exactly when its row is durable there, so
there is no second file that could disagree with the output after a crash:

- killed before its row was written (or before the part holding it was renamed into place): not done, the
  restart classifies it; it has no row yet, so it gets exactly one.
- killed after: done, the restart skips it (and moves it, with ``--move-done``, if the kill came before the move).

A row carries its file's :class:`~edgecls.runtime.sources.folder_watch.FileKey` (path, size, modification time),
which is what the restart reads back. ``--move-done`` moves a file only after :meth:`DoneRecord.commit` returned
its key, i.e. after its row is durable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from edgecls.runtime.sources.folder_watch import FileKey
from edgecls.runtime.sources.sinks import Sink


class DoneRecord(Sink, Protocol):
    """A sink that is also the record of done files (see the module)."""

    def done_keys(self) -> set[FileKey]:
        """The files done before this process started (read back from the output)."""
        ...

    def expect(self, keys: Sequence[FileKey]) -> None:
        """The files about to be classified: their rows will carry these keys."""
        ...

    def commit(self, force: bool = False) -> list[FileKey]:
        """Make the rows written so far durable (or wait for more, unless ``force``); the keys now done."""
        ...


class PendingKeys:
    """The bookkeeping both records share: keys of expected files, and of rows written but not yet committed."""

    def __init__(self) -> None:
        self._expected: dict[str, FileKey] = {}
        self._pending: list[FileKey] = []

    def expect(self, keys: Sequence[FileKey]) -> None:
        for key in keys:
            self._expected[key.path] = key

    def row_key(self, source: str) -> FileKey | None:
        """The key of the file a row is for (None for a row of no watched file); it is committed with the row."""
        key = self._expected.pop(source, None)
        if key is not None:
            self._pending.append(key)
        return key

    @property
    def uncommitted(self) -> int:
        return len(self._pending)

    def pending(self) -> tuple[FileKey, ...]:
        """The keys of the rows written since the last commit, in order."""
        return tuple(self._pending)

    def committed(self) -> list[FileKey]:
        """Hand over the pending keys: call once their rows are durable."""
        keys, self._pending = self._pending, []
        return keys
