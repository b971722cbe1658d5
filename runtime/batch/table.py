"""The batch result table: one row per input file, the fields of ``edgecls run --json`` plus error rows.

Both paths (in-process and Ray) build their rows here from the runtime's own records
(:meth:`edgecls.runtime.sources.records.Record.to_dict` / :meth:`ErrorRecord.to_dict`), so a row holds exactly what
``run --json`` prints for that file, with the fields the other kind of row has set to null:

    source      string                                        absolute path or URI of the file
    top_k       list<struct<label string, index int64, score double>>   best first; null on error rows
    latency_ms  double                                        preprocessing + share of the batch's inference
    error       string                                        one line naming the file; null when classified

pyarrow is imported inside the functions, so the runtime without the ``ray`` extra never needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.sources.image_batches import ImageResult
from edgecls.runtime.sources.records import ErrorRecord, Record

if TYPE_CHECKING:
    import pyarrow as pa

COLUMNS = ("source", "top_k", "latency_ms", "error")


def arrow_schema() -> pa.Schema:
    import pyarrow as pa

    prediction = pa.struct([("label", pa.string()), ("index", pa.int64()), ("score", pa.float64())])
    return pa.schema(
        [
            pa.field("source", pa.string(), nullable=False),
            pa.field("top_k", pa.list_(prediction)),
            pa.field("latency_ms", pa.float64()),
            pa.field("error", pa.string()),
        ]
    )


def row_from_json(obj: dict[str, Any]) -> dict[str, Any]:
    """A ``run --json`` object (result or error) -> a table row with every column present."""
    return {name: obj.get(name) for name in COLUMNS}


def json_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A table row -> the object ``run --json`` prints for it (null columns left out)."""
    return {name: row[name] for name in COLUMNS if row.get(name) is not None}


def row_from_result(result: ImageResult) -> dict[str, Any]:
    """The folder runner's outcome for one image -> its row (through the same records ``run`` emits)."""
    if result.error is not None:
        return row_from_json(ErrorRecord(result.source, result.error).to_dict())
    assert result.predictions is not None
    return row_from_json(Record(result.source, result.predictions, result.latency_ms).to_dict())


def rows_to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pylist(list(rows), schema=arrow_schema())


def check_complete(rows: int, expected: int) -> None:
    """Every input has exactly one row: a table with fewer or more rows than inputs is a failed job."""
    if rows != expected:
        raise EdgeclsError(f"the written table has {rows} row(s) for {expected} input(s); it is incomplete")


@dataclass(frozen=True)
class BatchSummary:
    """What a finished job wrote (counted from the table itself) and how fast."""

    out: str
    images: int  # rows in the table: classified images + error rows
    errors: int
    elapsed_s: float  # listing + classification + writing (not the start of a Ray cluster)
    stopped_by: int | None = None  # --watch: the exit status of the signal that ended it (130, 143)

    @property
    def images_per_s(self) -> float:
        return self.images / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        return (
            f"{self.images} image(s), {self.errors} error(s) in {self.elapsed_s:.2f} s "
            f"({self.images_per_s:.1f} images/s) -> {self.out}"
        )
