"""``edgecls batch --ray``: Ray Data reads the files, a pool of actors each holding one Classifier labels them.

    from_items(files)                                 {path: string} blocks
      -> map_batches(read_inputs)                     {path, bytes, error}, read by tasks (runtime/batch/reads.py)
      -> map_batches(ClassifyImages, concurrency=N)   actor pool; the model is loaded once per actor
      -> union(error rows of the arguments that found no file)
      -> write_parquet(RESULTS)                       one file per >= 50k rows, written by the workers

Each actor decodes and preprocesses with the runtime's own code
(:func:`edgecls.runtime.sources.image_batches.classify_encoded`: the same reduced JPEG decoding and error
messages as ``edgecls run``), so a file's row is the same as the in-process path's. A file that cannot be read (a
dangling link, a pipe, over ``--max-file-mb``) or decoded is an error row, never a failed task: the files are read by
:func:`edgecls.runtime.batch.reads.read_inputs` through the runtime's guarded reader, not by Ray Data's
``read_binary_files``, which fails the whole job on one unreadable file and reads pipes and devices.

Fault tolerance is Ray's: an actor whose process dies is restarted (``max_restarts``) and the batch it held
is re-run on the pool (``max_task_retries``); a batch's rows exist only once its task returned, so a retried
batch is neither lost nor written twice. The bounds are finite so that an image that kills its worker every
time (a decoder crash) fails the job instead of restarting actors forever. The driver then counts the table:
one row per input, or the job fails.

Ray is imported only here, and this module only when ``--ray`` is given.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecls.runtime.batch.inputs import list_inputs
from edgecls.runtime.batch.job import BatchJob
from edgecls.runtime.batch.output import claimed_output, published_dir
from edgecls.runtime.batch.reads import read_inputs
from edgecls.runtime.batch.table import (
    BatchSummary,
    check_complete,
    row_from_json,
    row_from_result,
    rows_to_table,
)
from edgecls.runtime.batch.writers import count_rows, jsonl_path, write_jsonl
from edgecls.runtime.errors import EdgeclsError, MissingExtraError
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.sources.image_batches import classify_encoded
from edgecls.runtime.sources.records import ErrorRecord

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

ACTOR_MAX_RESTARTS = 4  # per actor: process deaths survived before Ray gives up on it
ACTOR_MAX_TASK_RETRIES = 4  # per batch: re-runs after the actor running it died
READS_PER_NODE = 2  # concurrent read tasks per node (file reads are I/O; decoding happens in the actors)
MIN_ROWS_PER_FILE = 50_000  # ~10 MB Parquet files instead of one tiny file per batch

#: Test hook: when this environment variable names an existing file, the first actor that deletes it
#: exits (``os._exit``) after classifying its batch and before returning it, as a killed worker would.
CRASH_ONCE_ENV = "EDGECLS_BATCH_TEST_CRASH_ONCE"

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class ClassifyImages:
    """Ray Data callable class: ``{path, bytes, error}`` batches -> table rows, with one Classifier per actor."""

    def __init__(
        self,
        model: bytes,
        top_k: int,
        provider: str,
        threads: int,
        contract_overrides: dict[str, Any],
        max_pixels: int,
    ) -> None:
        self.classifier = Classifier(
            model, provider=provider, threads=threads, contract=contract_overrides or None, spin=False
        )
        self.top_k, self.max_pixels = top_k, max_pixels

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        names = [str(p) for p in batch["path"]]
        unread = {i: str(e) for i, e in enumerate(batch["error"]) if e is not None}  # read_inputs' error rows
        items = [(n, bytes(b)) for i, (n, b) in enumerate(zip(names, batch["bytes"], strict=True)) if i not in unread]
        classified = iter(classify_encoded(self.classifier, items, self.top_k, self.max_pixels))
        rows = [
            row_from_json(ErrorRecord(n, unread[i]).to_dict()) if i in unread else row_from_result(next(classified))
            for i, n in enumerate(names)
        ]
        _crash_once_if_armed()
        return rows_to_table(rows)


def _crash_once_if_armed() -> None:
    arm = os.environ.get(CRASH_ONCE_ENV)
    if arm:
        try:
            os.remove(arm)  # atomic: exactly one actor wins
        except FileNotFoundError:
            return
        os._exit(1)


def _start_ray(address: str) -> bool:
    """Connect to ``address`` or start a local cluster (``local``); False when this process already had Ray."""
    if address == "local":
        # A cluster only this process uses listens on loopback: with this variable off, Ray takes 127.0.0.1 as
        # the node address instead of the machine's reachable IP (ray/_private/services.py,
        # get_node_ip_address; ray-project/ray#18730). Read when Ray is imported, so set before the import.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as e:
        raise MissingExtraError("edgecls batch --ray needs Ray", "ray") from e
    if ray.is_initialized():
        return False
    import logging

    if address == "local":
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
    else:
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except ConnectionError as e:
            raise EdgeclsError(f"--ray {address}: cannot connect ({str(e).splitlines()[0]})") from e
    return True


def _alive_nodes() -> int:
    import ray

    return max(1, sum(1 for n in ray.nodes() if n.get("Alive")))


def _name_prefix(files: list[str]) -> str:
    schemes = {m.group(1) if (m := _SCHEME.match(f)) else "" for f in files}
    if len(schemes) > 1:
        raise EdgeclsError(f"inputs mix filesystems ({', '.join(sorted(s or 'local' for s in schemes))}); "
                           "run one job per filesystem")
    scheme = schemes.pop() if schemes else ""
    return f"{scheme}://" if scheme else ""


def _filesystem(uri: str) -> pafs.FileSystem:
    """The pyarrow filesystem of the job's URIs (one for all: see ``_name_prefix``), shipped to the read tasks."""
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)[0]
    except (OSError, ValueError) as e:
        raise EdgeclsError(f"{uri}: cannot open its filesystem ({str(e).splitlines()[0]})") from e


def classify_on_ray(job: BatchJob, address: str = "local") -> BatchSummary:
    """Classify every input on a Ray cluster (``local``: one started in this process) into ``job.out``."""
    with claimed_output(job.out, job.jsonl, job.overwrite):  # before Ray starts: a refusal costs nothing
        return _classify(job, address)


def _classify(job: BatchJob, address: str) -> BatchSummary:
    started = _start_ray(address)
    import ray

    try:
        t0 = time.perf_counter()
        inputs = list_inputs(job.inputs)
        try:
            model = Path(job.model).read_bytes()
        except OSError as e:
            raise EdgeclsError(f"{job.model}: cannot read model ({e.strerror or e})") from e
        # Load it once here too: a bad model or contract is one clear line before any actor starts.
        Classifier(model, provider=job.provider, threads=1, contract=job.contract_overrides or None)
        cpus_per_actor = job.threads or 1
        concurrency = job.actors or max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_actor))
        parts = []
        if inputs.files:
            # Reading bytes and writing Parquet reserve no CPU: the actors hold every CPU they may use, and a
            # read or write task waiting for a CPU an actor holds would stall the pipeline (it does on 2 cores).
            # Without a CPU to wait for, Ray would start a worker process per read task at once (14 for 240
            # files, 50 s on a busy 2-core box), so reads run READS_PER_NODE at a time per node.
            prefix = _name_prefix(inputs.files)
            filesystem = _filesystem(inputs.files[0]) if prefix else None
            files = ray.data.from_items([{"path": f} for f in inputs.files]).map_batches(
                read_inputs,
                fn_kwargs={"max_bytes": job.max_file_bytes, "filesystem": filesystem, "prefix": prefix},
                batch_size=job.batch_size,
                batch_format="pyarrow",
                num_cpus=0,
                concurrency=READS_PER_NODE * _alive_nodes(),
            )
            with warnings.catch_warnings():
                # Ray 2.60 warns that remote kwargs passed to map_batches are deprecated, yet has no named
                # parameter for max_restarts / max_task_retries; pyproject caps ray below 2.64, which drops them.
                warnings.simplefilter("ignore", DeprecationWarning)
                classified = files.map_batches(
                    ClassifyImages,
                    fn_constructor_kwargs={
                        "model": model,
                        "top_k": job.top_k,
                        "provider": job.provider,
                        "threads": cpus_per_actor,
                        "contract_overrides": dict(job.contract_overrides),
                        "max_pixels": job.max_pixels,
                    },
                    batch_size=job.batch_size,
                    batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=concurrency),
                    num_cpus=cpus_per_actor,
                    max_restarts=ACTOR_MAX_RESTARTS,
                    max_task_retries=ACTOR_MAX_TASK_RETRIES,
                )
            parts.append(classified)
        if inputs.problems:
            problem_rows = [row_from_json(ErrorRecord(p.name, p.error).to_dict()) for p in inputs.problems]
            parts.append(ray.data.from_arrow(rows_to_table(problem_rows)))
        table = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
        with published_dir(job.out, job.overwrite) as folder:
            table.write_parquet(folder, min_rows_per_file=MIN_ROWS_PER_FILE, ray_remote_args={"num_cpus": 0})
        images, errors = count_rows(job.out)
        check_complete(images, len(inputs.files) + len(inputs.problems))
        if job.jsonl:
            write_jsonl(job.out, jsonl_path(job.out))
        return BatchSummary(job.out, images, errors, time.perf_counter() - t0)
    finally:
        if started:
            ray.shutdown()
