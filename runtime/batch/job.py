"""What a batch job is given: the model, its inputs, where the table goes, and how to run it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from edgecls.runtime.images.file_guard import DEFAULT_MAX_FILE_MB, MB
from edgecls.runtime.images.prescan.limits import DEFAULT_MAX_PIXELS
from edgecls.runtime.sources.watch_options import WatchOptions


@dataclass(frozen=True)
class BatchJob:
    """One ``edgecls batch`` invocation, the same for the in-process and the Ray path.

    ``batch_size`` is the inference batch (and Ray Data's ``map_batches`` batch); ``actors`` the number of Ray
    actors, each holding one Classifier (None: one per CPU of the cluster); ``decode_threads`` the in-process
    image decode threads (None: image_batches.default_workers()).
    ``threads`` is onnxruntime's intra-op threads per Classifier (None: in-process onnxruntime's default,
    on Ray one per CPU the actor reserves, so actors on one node do not fight over cores).
    ``max_file_bytes``: larger files (and any non-regular file) are error rows, never read whole.
    ``max_pixels``: images whose header declares more pixels are error rows, never decoded.
    ``overwrite``: replace an earlier table at ``out`` (and its ``.jsonl``) instead of refusing.
    ``watch``: keep watching the input folders (in-process only; :mod:`edgecls.runtime.batch.watch`).
    """

    model: str | os.PathLike[str]
    inputs: tuple[str, ...]
    out: str
    top_k: int = 3
    batch_size: int = 32
    actors: int | None = None  # Ray only
    decode_threads: int | None = None  # in-process only
    provider: str = "auto"
    threads: int | None = None
    contract_overrides: dict[str, Any] = field(default_factory=dict)
    jsonl: bool = False
    max_file_bytes: int = DEFAULT_MAX_FILE_MB * MB
    max_pixels: int = DEFAULT_MAX_PIXELS
    overwrite: bool = False
    watch: WatchOptions | None = None
