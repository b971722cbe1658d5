"""``edgecls batch DIR... --watch --out RESULTS``: the in-process job, kept running on folders that fill up.

Files are classified as they arrive, each once (:mod:`edgecls.runtime.sources.watch_loop`), through the runner
the one-shot job uses, and the table grows a Parquet part at a time (:mod:`edgecls.runtime.batch.watch_parts`)
until SIGINT/SIGTERM. RESULTS is locked while the watch runs, as for a one-shot job; a restart on the same
RESULTS resumes from the files its parts record. Local folders only, without Ray, --jsonl or --overwrite.
"""

from __future__ import annotations

import time
from pathlib import Path

from edgecls.runtime.batch.job import BatchJob
from edgecls.runtime.batch.output import claimed_output, local_target
from edgecls.runtime.batch.table import BatchSummary
from edgecls.runtime.batch.watch_parts import ParquetParts
from edgecls.runtime.batch.writers import count_rows, is_uri
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.sources.source_loop import LoopOptions
from edgecls.runtime.sources.stop_signals import StopSignals
from edgecls.runtime.sources.watch_loop import watch_folders, watch_roots


def watch_in_process(job: BatchJob) -> BatchSummary:
    """Watch ``job.inputs`` until a signal; the summary counts the whole table and names the signal."""
    assert job.watch is not None
    if is_uri(job.out):
        raise EdgeclsError("--watch writes a local --out folder (parts appear there as files are classified)")
    if job.jsonl or job.overwrite:
        raise EdgeclsError("--watch cannot be combined with --jsonl or --overwrite (a restart resumes from --out)")
    t0 = time.perf_counter()
    roots = watch_roots(job.inputs)
    with claimed_output(job.out, resume=True), StopSignals() as signals:
        try:
            clf = Classifier(job.model, provider=job.provider, threads=job.threads,
                             contract=job.contract_overrides or None, spin=False)
            parts = ParquetParts(local_target(job.out))
            options = LoopOptions(top_k=job.top_k, batch_size=job.batch_size, decode_threads=job.decode_threads,
                                  max_file_bytes=job.max_file_bytes, max_pixels=job.max_pixels)
            watch_folders(clf, roots, parts, parts, options, job.watch)
        except KeyboardInterrupt:  # before the watch started: nothing was written
            pass
        status = signals.exit_code
    folder = Path(local_target(job.out))
    images, errors = count_rows(str(folder)) if any(folder.glob("*.parquet")) else (0, 0)
    return BatchSummary(job.out, images, errors, time.perf_counter() - t0, stopped_by=status)
