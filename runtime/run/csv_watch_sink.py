"""``edgecls run DIR --watch --csv FILE``: the CSV appended as files are classified, and the record a restart reads.

The columns of ``run --csv`` plus ``file_size`` and ``file_mtime_ns``: with the path in ``source`` they identify
the version of the file each row is for (:class:`~edgecls.runtime.sources.folder_watch.FileKey`). Rows are
appended and, at each commit, flushed and fsync'd; a commit returns the keys whose rows are now durable
(:mod:`edgecls.runtime.sources.done_record` says why that makes each file's row exist exactly once).

At start an existing CSV is read back: its keys are the files already done. A process killed mid-row leaves a
last line without its newline: that partial row is cut off (its file was not done; it is classified again).
A CSV without the two columns (written by ``run`` without --watch) is refused rather than appended to.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import IO

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.run.csv_sink import FIELDS, error_row, result_row
from edgecls.runtime.sources.done_record import PendingKeys
from edgecls.runtime.sources.folder_watch import FileKey
from edgecls.runtime.sources.records import ErrorRecord, Record, RunSummary
from edgecls.runtime.sources.sinks import QuietSink

WATCH_FIELDS = (*FIELDS, "file_size", "file_mtime_ns")


def _read_back(path: Path) -> set[FileKey]:
    """The keys of an existing watch CSV, after cutting off a partial last row; EdgeclsError if it is not one."""
    with open(path, "rb+") as f:
        data = f.read()
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) != len(data):  # killed mid-row: that row's file is not done
            f.truncate(len(whole))
            f.flush()
            os.fsync(f.fileno())
    reader = csv.DictReader(io.StringIO(whole.decode("utf-8", errors="replace"), newline=""))
    if whole and tuple(reader.fieldnames or ()) != WATCH_FIELDS:
        raise EdgeclsError(f"--csv {path}: exists and was not written by run --watch (columns differ); "
                           "choose another file to start a new watch")
    keys: set[FileKey] = set()
    for row in reader:
        if row.get("file_size") and row.get("file_mtime_ns"):
            keys.add(FileKey(row["source"], int(row["file_size"]), int(row["file_mtime_ns"])))
    return keys


class WatchCsvSink(QuietSink):
    """The watch's CSV: appended row by row, fsync'd at each commit, read back at a restart."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._keys = PendingKeys()
        try:
            self._done = _read_back(self.path) if self.path.exists() else set()
            self._file: IO[str] = open(self.path, "a", newline="", encoding="utf-8")
        except OSError as e:
            raise EdgeclsError(f"--csv {self.path}: cannot write ({e.strerror or e})") from e
        self._writer = csv.DictWriter(self._file, fieldnames=WATCH_FIELDS)
        if self._file.tell() == 0:
            self._writer.writeheader()
            self._sync()

    def done_keys(self) -> set[FileKey]:
        return set(self._done)

    def expect(self, keys: list[FileKey]) -> None:
        self._keys.expect(keys)

    def _append(self, row: dict[str, object], source: str) -> None:
        key = self._keys.row_key(source)
        if key is not None:
            row = {**row, "file_size": key.size, "file_mtime_ns": key.mtime_ns}
        try:
            self._writer.writerow(row)
        except OSError as e:
            raise EdgeclsError(f"--csv {self.path}: cannot write ({e.strerror or e})") from e

    def result(self, record: Record) -> None:
        self._append(result_row(record), record.source)

    def error(self, record: ErrorRecord) -> None:
        self._append(error_row(record), record.source)

    def _sync(self) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as e:
            raise EdgeclsError(f"--csv {self.path}: cannot write ({e.strerror or e})") from e

    def commit(self, force: bool = False) -> list[FileKey]:
        if self._keys.uncommitted:
            self._sync()
        return self._keys.committed()

    def close(self, summary: RunSummary) -> None:
        try:
            self.commit(force=True)
        finally:
            self._file.close()
