"""``edgecls batch`` without ``--ray``: the runtime's own runner (parallel decode, batched inference) in this
process, its records written as the batch table. Never imports Ray.
"""

from __future__ import annotations

import time

from edgecls.runtime.batch.inputs import list_inputs
from edgecls.runtime.batch.job import BatchJob
from edgecls.runtime.batch.output import claimed_output, published_dir
from edgecls.runtime.batch.table import BatchSummary, check_complete
from edgecls.runtime.batch.writers import ParquetSink, count_rows, is_uri, jsonl_path, write_jsonl
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.sources.source_loop import LoopOptions, run_sources
from edgecls.runtime.sources.source_specs import SourceSpec


def classify_in_process(job: BatchJob) -> BatchSummary:
    """Classify every input file here and write the table to ``job.out``; returns the counts read back."""
    t0 = time.perf_counter()
    if is_uri(job.out):
        raise EdgeclsError("a URI --out is written by Ray Data: add --ray local or --ray ADDRESS")
    with claimed_output(job.out, job.jsonl, job.overwrite):  # RESULTS checked and locked for the whole job
        return _classify(job, t0)


def _classify(job: BatchJob, t0: float) -> BatchSummary:
    inputs = list_inputs(job.inputs)
    if inputs.has_uris:
        raise EdgeclsError("URI inputs (s3://, gs://, ...) are read by Ray Data: add --ray local or --ray ADDRESS")
    # No spinning: the decode threads need the cores between inferences (as in `edgecls run`).
    clf = Classifier(job.model, provider=job.provider, threads=job.threads,
                     contract=job.contract_overrides or None, spin=False)
    specs = [SourceSpec("image", f, f) for f in inputs.files]
    options = LoopOptions(top_k=job.top_k, batch_size=job.batch_size, decode_threads=job.decode_threads,
                          max_file_bytes=job.max_file_bytes, max_pixels=job.max_pixels)
    with published_dir(job.out, job.overwrite) as folder:
        summary = run_sources(clf, specs, inputs.problems, ParquetSink(folder), options)
        if summary.interrupted:  # Ctrl-C: leave no table rather than a partial one that looks whole
            raise KeyboardInterrupt
    images, errors = count_rows(job.out)
    check_complete(images, len(specs) + len(inputs.problems))
    if job.jsonl:
        write_jsonl(job.out, jsonl_path(job.out))
    return BatchSummary(job.out, images, errors, time.perf_counter() - t0)
