"""The bench's result files: one JSON document (environment, settings, rows with every sample) and a CSV of rows.

Every file is written atomically; :func:`load_json` reads a JSON document back into a :class:`BenchResult`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any

from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.bench.rows import BenchResult, BenchRow, StageTimes


def write_json(result: BenchResult, path: str | os.PathLike[str]) -> Path:
    """One JSON document ``{environment, settings, rows}`` (rows include every timed sample)."""
    return atomic_write_text(path, json.dumps(result.to_dict(), indent=2) + "\n")


def load_json(path: str | os.PathLike[str]) -> BenchResult:
    return BenchResult.from_dict(json.loads(Path(path).read_text()))


#: The CSV's columns: every field of a row but its samples and node placement (lists joined), the model's own
#: memory (``model_rss_mb``), then the end-to-end stages (``e2e_decode_ms``, ...).
CSV_FIELDS: tuple[str, ...] = (
    *(f.name for f in dataclasses.fields(BenchRow) if f.name not in ("e2e", "node_placement", "samples_ms")),
    "model_rss_mb",
    *(f"e2e_{f.name}" for f in dataclasses.fields(StageTimes)),
)


def _csv_record(row: BenchRow) -> dict[str, Any]:
    d = row.to_dict(samples=False)
    d["providers_used"] = ";".join(row.providers_used)
    d["warnings"] = " | ".join(row.warnings)
    d.update({f"e2e_{k}": v for k, v in (d.pop("e2e") or {}).items()})
    return {k: ("" if d.get(k) is None else d.get(k)) for k in CSV_FIELDS}


def write_csv(result: BenchResult, path: str | os.PathLike[str]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS))
    writer.writeheader()
    for row in result.rows:
        writer.writerow(_csv_record(row))
    return atomic_write_text(path, buf.getvalue())
