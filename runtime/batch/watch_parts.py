"""``edgecls batch DIR --watch --out RESULTS``: the table grows one Parquet part per commit, each published whole.

RESULTS is the same table a one-shot job writes (a folder of Parquet files with the table's schema, read by
``pandas.read_parquet(RESULTS)``), written in place: rows are gathered in memory and written as
``part-NNNNNN.parquet`` through :func:`edgecls.runtime.atomic.atomic_path` (hidden temporary, fsync, rename,
fsync of the folder), so a part is in the table whole or not at all, and Parquet readers skip the hidden
temporaries. Each part's schema metadata (``edgecls.watch.files``, JSON) lists the
:class:`~edgecls.runtime.sources.folder_watch.FileKey` of each of its rows; it is what a restart reads back to
know the files done (:mod:`edgecls.runtime.sources.done_record` says why that is exactly once). The columns stay
those of the batch table.

A part is written when :data:`ROWS_PER_PART` rows are waiting, when the oldest has waited :data:`MAX_DELAY_S`,
or when the watch stops: few parts for a folder filling slowly, none larger than a row group of a one-shot table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgecls.runtime.atomic import atomic_path
from edgecls.runtime.batch.table import row_from_json, rows_to_table
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.sources.done_record import PendingKeys
from edgecls.runtime.sources.folder_watch import FileKey
from edgecls.runtime.sources.records import ErrorRecord, Record, RunSummary
from edgecls.runtime.sources.sinks import QuietSink

WATCH_METADATA = b"edgecls.watch.files"
ROWS_PER_PART = 4096
MAX_DELAY_S = 2.0
PART_GLOB = "part-*.parquet"


def read_done(folder: Path) -> tuple[set[FileKey], int]:
    """The keys recorded in a watch table's parts, and the number the next part takes; EdgeclsError for a
    table that a watch did not write (resuming from it would classify its files again)."""
    import pyarrow.parquet as pq

    done: set[FileKey] = set()
    next_part = 0
    for part in sorted(folder.glob(PART_GLOB)):
        metadata = pq.read_schema(part).metadata or {}
        if WATCH_METADATA not in metadata:
            raise EdgeclsError(f"--out {folder}: holds a table not written by batch --watch ({part.name}); "
                               "choose another --out to start a watch")
        done.update(FileKey(path, size, mtime) for path, size, mtime in json.loads(metadata[WATCH_METADATA]))
        next_part = max(next_part, int(part.stem.split("-")[1]) + 1)
    return done, next_part


class ParquetParts(QuietSink):
    """The watch's table under ``folder``: rows gathered, then published a part at a time (see the module)."""

    def __init__(self, folder: str | Path, clock: Any = time.monotonic) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EdgeclsError(f"--out {self.folder}: cannot create ({e.strerror or e})") from e
        self._done, self._next = read_done(self.folder)
        self._keys = PendingKeys()
        self._rows: list[dict[str, Any]] = []
        self._clock = clock
        self._oldest: float | None = None

    def done_keys(self) -> set[FileKey]:
        return set(self._done)

    def expect(self, keys: Sequence[FileKey]) -> None:
        self._keys.expect(keys)

    def _add(self, obj: dict[str, Any]) -> None:
        self._keys.row_key(obj["source"])
        self._rows.append(row_from_json(obj))
        if self._oldest is None:
            self._oldest = self._clock()

    def result(self, record: Record) -> None:
        self._add(record.to_dict())

    def error(self, record: ErrorRecord) -> None:
        self._add(record.to_dict())

    def commit(self, force: bool = False) -> list[FileKey]:
        if not self._rows:
            return []
        waited = self._clock() - (self._oldest or 0.0)
        if not force and len(self._rows) < ROWS_PER_PART and waited < MAX_DELAY_S:
            return []
        keys = [[k.path, k.size, k.mtime_ns] for k in self._keys.pending()]
        table = rows_to_table(self._rows)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), WATCH_METADATA: json.dumps(keys)})
        import pyarrow.parquet as pq

        with atomic_path(self.folder / f"part-{self._next:06d}.parquet") as tmp:
            pq.write_table(table, tmp)
        self._next += 1
        self._rows.clear()
        self._oldest = None
        return self._keys.committed()

    def close(self, summary: RunSummary) -> None:
        self.commit(force=True)
