"""What ``edgecls batch`` does: check that Parquet can be written, then run the job here or on Ray."""

from __future__ import annotations

from edgecls.runtime.batch.job import BatchJob
from edgecls.runtime.batch.table import BatchSummary
from edgecls.runtime.errors import EdgeclsError, MissingExtraError


def classify_batch(job: BatchJob, ray: str | None = None) -> BatchSummary:
    """Classify ``job`` in this process (``ray`` None) or on the Ray cluster at ``ray`` (local, auto, an address).

    pyarrow is checked first: both paths write Parquet, and a missing extra should cost nothing."""
    try:
        import pyarrow  # noqa: F401
    except ImportError as e:
        raise MissingExtraError("edgecls batch needs pyarrow", "ray") from e
    if ray is None and job.actors is not None:
        raise EdgeclsError("--actors sizes Ray's pool of Classifiers: add --ray (in this process, --decode-threads)")
    if ray is not None and job.decode_threads is not None:
        raise EdgeclsError("--decode-threads is for a job in this process; with --ray, --actors sets how many "
                           "Classifiers decode and classify")
    if job.watch is not None:
        if ray is not None:
            raise EdgeclsError("--watch runs in this process: leave out --ray")
        from edgecls.runtime.batch.watch import watch_in_process

        return watch_in_process(job)
    if ray is None:
        from edgecls.runtime.batch.local import classify_in_process

        return classify_in_process(job)
    from edgecls.runtime.batch.on_ray import classify_on_ray

    return classify_on_ray(job, ray)
