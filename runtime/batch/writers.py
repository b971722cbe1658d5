"""Writing the batch table: a folder of Parquet files (+ JSON Lines on request), published whole.

RESULTS is a folder of Parquet files in both paths (Ray writes one file per block from the workers; the
in-process path writes ``part-00000.parquet``), so ``pyarrow.parquet.read_table(RESULTS)`` or
``pandas.read_parquet(RESULTS)`` reads either. A local RESULTS is written under a hidden temporary sibling
and renamed into place when the job finishes (:mod:`edgecls.runtime.batch.output`): an interrupted or failed
job leaves no half table. A URI (``s3://...``) is written in place (object stores have no rename).

JSON Lines (``--jsonl``) go to ``RESULTS.jsonl`` (beside the folder, so Parquet readers of the folder never
meet them), one ``run --json`` object per line, streamed from the written Parquet by the driver.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from edgecls.runtime.atomic import atomic_path
from edgecls.runtime.batch.table import arrow_schema, json_from_row, row_from_json, rows_to_table
from edgecls.runtime.sources.records import ErrorRecord, Record, RunSummary

_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_uri(path: str) -> bool:
    return bool(_URI.match(path)) and not path.startswith("file://")


def jsonl_path(out: str) -> str:
    """Where ``--jsonl`` writes: ``RESULTS.jsonl`` (``results.parquet`` -> ``results.jsonl``)."""
    base = out.rstrip("/")
    return (base[: -len(".parquet")] if base.endswith(".parquet") else base) + ".jsonl"


class ParquetSink:
    """A runner sink writing each record as a table row to ``FOLDER/part-00000.parquet``, in row groups."""

    ROWS_PER_GROUP = 8192

    def __init__(self, folder: str) -> None:
        import pyarrow.parquet as pq

        self.path = os.path.join(folder, "part-00000.parquet")
        self._writer = pq.ParquetWriter(self.path, arrow_schema())
        self._rows: list[dict[str, Any]] = []

    def _add(self, obj: dict[str, Any]) -> None:
        self._rows.append(row_from_json(obj))
        if len(self._rows) >= self.ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(rows_to_table(self._rows))
            self._rows.clear()

    def result(self, record: Record) -> None:
        self._add(record.to_dict())

    def error(self, record: ErrorRecord) -> None:
        self._add(record.to_dict())

    def notice(self, source: str, message: str) -> None:
        pass

    def source_done(self, source: str) -> None:
        pass

    def close(self, summary: RunSummary) -> None:
        self._flush()
        self._writer.close()


def count_rows(folder: str) -> tuple[int, int]:
    """(rows, error rows) of a written table, read back from its Parquet files."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    ds = pads.dataset(folder, format="parquet", schema=arrow_schema())
    return ds.count_rows(), ds.count_rows(filter=pc.field("error").is_valid())


def write_jsonl(folder: str, target: str) -> None:
    """Stream a written table into ``target`` as ``run --json`` lines (atomically for a local target)."""
    import pyarrow.dataset as pads

    ds = pads.dataset(folder, format="parquet", schema=arrow_schema())
    if is_uri(target):
        import pyarrow.fs as pafs

        fs, path = pafs.FileSystem.from_uri(target)
        with fs.open_output_stream(path) as f:
            for batch in ds.to_batches():
                f.write("".join(json.dumps(json_from_row(r)) + "\n" for r in batch.to_pylist()).encode())
        return
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for batch in ds.to_batches():
            f.writelines(json.dumps(json_from_row(r)) + "\n" for r in batch.to_pylist())
