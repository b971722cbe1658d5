"""``edgecls run --csv FILE``: every result and error row in a CSV published atomically.

The CSV is written through :func:`edgecls.runtime.atomic.atomic_path`, so an interrupted run still publishes a
complete file (on a clean stop) and a killed one leaves no half file.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path
from typing import Any

from edgecls.runtime.atomic import atomic_path
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.sources.records import ErrorRecord, Record, RunSummary
from edgecls.runtime.sources.sinks import QuietSink

FIELDS = ("source", "frame", "label", "index", "score", "top_k", "latency_ms", "age_ms", "error")


def result_row(record: Record) -> dict[str, Any]:
    """A result as a CSV row: the best class in its own columns, all k as JSON in ``top_k``."""
    best = record.predictions[0]
    return {
        "source": record.source,
        "frame": "" if record.frame is None else record.frame,
        "label": best.label,
        "index": best.index,
        "score": f"{best.score:.6f}",
        "top_k": json.dumps([p.to_dict() for p in record.predictions]),
        "latency_ms": f"{record.latency_ms:.3f}",
        "age_ms": "" if record.age_ms is None else f"{record.age_ms:.3f}",
        "error": "",
    }


def error_row(record: ErrorRecord) -> dict[str, Any]:
    return {"source": record.source, "frame": "" if record.frame is None else record.frame, "error": record.error}


class CsvSink(QuietSink):
    """``source,frame,label,index,score,top_k,latency_ms,age_ms,error``; top_k holds all k as JSON.

    Every row is flushed, so a full disk shows up at once: the atomic write is then aborted (no half CSV
    is published) and one :class:`EdgeclsError` naming the file ends the run.
    """

    FIELDS = FIELDS

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._failed = False
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(path))
        try:
            self._file = self._stack.enter_context(open(tmp, "w", newline="", encoding="utf-8"))
        except OSError as e:
            self._abort(e)
        self._writer = csv.DictWriter(self._file, fieldnames=self.FIELDS)
        self._write(self._writer.writeheader)  # fails here, before any work, when the disk is full

    def _abort(self, e: OSError) -> None:
        self._failed = True
        with contextlib.suppress(EdgeclsError, OSError):  # atomic_path deletes its temporary
            self._stack.__exit__(type(e), e, e.__traceback__)
        raise EdgeclsError(f"--csv {self.path}: cannot write ({e.strerror or e})") from e

    def _write(self, fn: Any, *args: Any) -> None:
        if self._failed:
            return
        try:
            fn(*args)
            self._file.flush()
        except OSError as e:
            self._abort(e)

    def result(self, record: Record) -> None:
        self._write(self._writer.writerow, result_row(record))

    def error(self, record: ErrorRecord) -> None:
        self._write(self._writer.writerow, error_row(record))

    def close(self, summary: RunSummary) -> None:
        if self._failed:
            return
        self._write(lambda: None)
        try:
            self._stack.close()  # closes the file, fsyncs and renames it onto the target
        except OSError as e:
            raise EdgeclsError(f"--csv {self.path}: cannot write ({e.strerror or e})") from e
