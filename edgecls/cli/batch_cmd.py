"""``edgecls batch``: label a large collection of image files into a Parquet table, here or on a Ray cluster.

Exit status: 0 every file classified; 1 some files became error rows (the table is written all the same);
2 the job could not start or did not finish (nothing is published at RESULTS: among others RESULTS is a
symbolic link, already holds a table without --overwrite, or another job is writing it); 130 after Ctrl-C.
With --watch the job runs until SIGINT (130) or SIGTERM (143), the table growing as files arrive.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.options import (
    BatchSizeOpt,
    DecodeThreadsOpt,
    MaxFileMbOpt,
    MaxPixelsOpt,
    ProviderOpt,
    ThreadsOpt,
    TopKOpt,
)
from edgecls.cli.watch_options import MoveDoneOpt, SettleOpt, WatchOpt, watch_settings
from edgecls.runtime.images.prescan.limits import DEFAULT_MAX_PIXELS
from edgecls.runtime.sources.watch_options import DEFAULT_SETTLE_S


def batch(
    model: Annotated[Path, typer.Argument(help="ONNX model (fp32, fp16 or int8) with an edgecls contract.")],
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Image files, folders (recursive), globs, or URIs pyarrow reads (s3://, gs://; with --ray)."
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out", "-o", help="Results folder (Parquet files); must not hold files yet (see --overwrite)."
        ),
    ],
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Run on Ray Data: 'local' (start a cluster on this machine), 'auto' (the cluster this node belongs "
            "to) or an address (HOST:6379, ray://HOST:10001).",
        ),
    ] = None,
    batch_size: BatchSizeOpt = 32,
    decode_threads: DecodeThreadsOpt = None,
    actors: Annotated[
        int | None,
        typer.Option("--actors", min=1, help="With --ray: Ray actors, each holding one Classifier (default: one per "
                     "CPU of the cluster, divided by --threads)."),
    ] = None,
    provider: ProviderOpt = "auto",
    threads: ThreadsOpt = None,
    top_k: TopKOpt = 3,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="Also write RESULTS.jsonl (one `run --json` object per line).")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace an earlier table at RESULTS (a folder of *.parquet only) and RESULTS.jsonl."
        ),
    ] = False,
    max_file_mb: MaxFileMbOpt = 100,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    watch: WatchOpt = False,
    settle: SettleOpt = DEFAULT_SETTLE_S,
    move_done: MoveDoneOpt = None,
) -> None:
    """Classify many image files into a Parquet table (the fields of `run --json`, plus error rows).

    Without --ray the job runs in this process; with --ray, Ray Data reads the files and a pool of
    actors, each holding one Classifier, labels them. Both give the same table. With --ray, --threads is
    also the number of CPUs each actor reserves.

    Examples:
      edgecls batch model.int8.onnx photos/ --out labels
      edgecls batch model.int8.onnx photos/ --out labels --ray local --jsonl
      edgecls batch model.int8.onnx s3://bucket/photos/ --out s3://bucket/labels \\
          --ray auto                                         (on the head node)
      edgecls batch model.int8.onnx drop/ --out labels --watch --move-done done/
    """
    from edgecls.runtime.batch.classify import classify_batch
    from edgecls.runtime.batch.job import BatchJob
    from edgecls.runtime.images.file_guard import max_file_bytes

    job = BatchJob(
        model=model, inputs=tuple(inputs), out=out.removeprefix("file://"), top_k=top_k, batch_size=batch_size,
        actors=actors, decode_threads=decode_threads, provider=provider, threads=threads, jsonl=jsonl,
        max_file_bytes=max_file_bytes(max_file_mb), max_pixels=max_pixels, overwrite=overwrite,
        watch=watch_settings(watch, settle, move_done),
    )
    summary = classify_batch(job, ray)
    print(summary.line(), file=sys.stderr, flush=True)
    if summary.stopped_by:
        raise typer.Exit(summary.stopped_by)
    if summary.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("batch", no_args_is_help=True)(batch)
