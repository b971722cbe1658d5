"""The rows ``edgecls run`` produces: one :class:`Record` per classified image or frame, one
:class:`ErrorRecord` per input that failed, and the :class:`RunSummary` of the whole run.

``Record.to_dict()`` / ``ErrorRecord.to_dict()`` are the JSON Lines rows of ``edgecls run --json``; ``edgecls
batch`` writes the same rows and ``edgecls serve``'s live feed publishes the same records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecls.runtime.inference.classifier import Prediction
from edgecls.runtime.terminal.redact import redact


@dataclass
class Record:
    """One classified image or frame (``frame`` and ``age_ms`` are None for image files)."""

    source: str
    predictions: list[Prediction]
    latency_ms: float  # preprocessing + inference + top-k for this input (its share of a batch)
    frame: int | None = None
    age_ms: float | None = None  # capture -> result, for video files, cameras and streams
    image: np.ndarray | None = None  # uint8[H, W, 3] BGR, only when a sink needs pixels (--save, --show)
    done: float | None = None  # time.monotonic() when its batch finished: one value per batch (FpsMeter)

    def __post_init__(self) -> None:
        # Every sink (JSON Lines, CSV, console, batch tables, serve's live feed) shows rows built here.
        self.source = redact(self.source)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source}
        if self.frame is not None:
            d["frame"] = self.frame
        d["top_k"] = [p.to_dict() for p in self.predictions]
        d["latency_ms"] = round(self.latency_ms, 3)
        if self.age_ms is not None:
            d["age_ms"] = round(self.age_ms, 3)
        return d


@dataclass
class ErrorRecord:
    """An input that could not be handled; ``error`` is one line naming it."""

    source: str
    error: str
    frame: int | None = None

    def __post_init__(self) -> None:
        # Library messages (OpenCV, FFmpeg) may quote the URL they were given, password included.
        self.source, self.error = redact(self.source), redact(self.error)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source, "error": self.error}
        if self.frame is not None:
            d["frame"] = self.frame
        return d


@dataclass
class SourceStats:
    results: int = 0
    errors: int = 0
    dropped: int = 0
    reconnects: int = 0


@dataclass
class RunSummary:
    sources: int = 0
    results: int = 0
    errors: int = 0
    failed: list[str] = field(default_factory=list)  # sources with at least one error
    elapsed_s: float = 0.0
    interrupted: bool = False
    per_source: dict[str, SourceStats] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.errors == 0 and not self.failed

    def line(self) -> str:
        dropped = sum(s.dropped for s in self.per_source.values())
        parts = [
            f"{self.results} result(s)",
            f"{self.errors} error(s)",
            f"{len(self.failed)} of {self.sources} source(s) failed",
        ]
        if dropped:
            parts.append(f"{dropped} live frame(s) skipped to stay current")
        text = ", ".join(parts) + f" in {self.elapsed_s:.2f} s"
        return ("interrupted: " if self.interrupted else "") + text


