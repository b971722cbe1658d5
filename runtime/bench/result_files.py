"""The bench's result files: one JSON document (environment, settings, rows with every sample) and a CSV of rows.

Every file is written atomically; :func:`load_json` reads a JSON document back into a :class:`BenchResult`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.bench.rows import BenchResult, BenchRow


def write_json(result: BenchResult, path: str | os.PathLike[str]) -> Path:
    """One JSON document ``{environment, settings, rows}`` (rows include every timed sample)."""
    return atomic_write_text(path, json.dumps(result.to_dict(), indent=2) + "\n")


def load_json(path: str | os.PathLike[str]) -> BenchResult:
    return BenchResult.from_dict(json.loads(Path(path).read_text()))


CSV_FIELDS: tuple[str, ...] = (
    "label",
    "model",
    "variant",
    "engine",
    "provider",
    "providers_used",
    "fallback",
    "batch",
    "threads",
    "spin",
    "runs",
    "warmup",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "max_ms",
    "throughput_ips",
    "speedup",
    "reference",
    "import_ms",
    "session_create_ms",
    "first_run_ms",
    "peak_rss_mb",
    "model_rss_mb",
    "model_size_mb",
    "accuracy",
    "accuracy_delta",
    "accuracy_images",
    "agreement",
    "max_abs_diff",
    "agreement_inputs",
    "auto_pick",
    "e2e_images",
    "e2e_decode_ms",
    "e2e_preprocess_ms",
    "e2e_infer_ms",
    "e2e_postprocess_ms",
    "e2e_total_ms",
    "e2e_images_per_s",
    "error",
    "warnings",
)


def _csv_record(row: BenchRow) -> dict[str, Any]:
    d = row.to_dict(samples=False)
    d["providers_used"] = ";".join(row.providers_used)
    d["warnings"] = " | ".join(row.warnings)
    e = row.e2e
    for k in (
        "images",
        "decode_ms",
        "preprocess_ms",
        "infer_ms",
        "postprocess_ms",
        "total_ms",
        "images_per_s",
    ):
        d[f"e2e_{k}"] = getattr(e, k) if e else None
    return {k: ("" if d.get(k) is None else d.get(k)) for k in CSV_FIELDS}


def write_csv(result: BenchResult, path: str | os.PathLike[str]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS))
    writer.writeheader()
    for row in result.rows:
        writer.writerow(_csv_record(row))
    return atomic_write_text(path, buf.getvalue())
