"""Image files at throughput: parallel decode + preprocess in a thread pool, batched inference, order kept.

OpenCV's ``imdecode``/``resize`` and onnxruntime's ``run`` release the GIL, so threads decode the next
images while the session runs the current batch. At most ``prefetch`` images are in flight, so memory stays
bounded on folders of any size (a 224 px input is 600 kB of float32 per image).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.images.decode import decode_bytes, decode_image
from edgecls.runtime.images.file_guard import DEFAULT_MAX_FILE_MB, MB
from edgecls.runtime.images.prescan.limits import DEFAULT_MAX_PIXELS
from edgecls.runtime.inference.classifier import Classifier, Prediction
from edgecls.runtime.inference.preprocess import decode_floor, preprocess


@dataclass
class ImageResult:
    """One file's outcome: predictions, or an error message naming the file."""

    source: str
    predictions: list[Prediction] | None
    error: str | None
    latency_ms: float  # this image's preprocessing + its share of the batch's inference and top-k
    decode_ms: float
    image: np.ndarray | None = None  # the decoded uint8[H, W, 3] BGR image, when keep_images=True


@dataclass
class _Prepared:
    source: str
    tensor: np.ndarray | None  # float32[3, h, w]
    image: np.ndarray | None
    error: str | None
    decode_ms: float
    preprocess_ms: float


def default_workers() -> int:
    """Decode threads: 2 to 4, as many as the cores allow (benchmarks/runtime_overhead.py measures the folder run)."""
    return max(2, min(4, os.cpu_count() or 2))


def _prepare(path: str, classifier: Classifier, keep_image: bool, max_bytes: int, max_pixels: int) -> _Prepared:
    # Regular files of at most max_bytes only: a pipe or a /dev/zero link in the folder is an error row,
    # never a thread blocked in open() or a read without end (runtime/images/file_guard.py); then the pre-scan's limits.
    floor = decode_floor(classifier.contract)
    return _prepare_with(path, lambda: decode_image(path, floor, max_bytes, max_pixels), classifier, keep_image)


def _prepare_with(
    path: str, decode: Callable[[], np.ndarray], classifier: Classifier, keep_image: bool
) -> _Prepared:
    t0 = time.perf_counter()
    try:
        image = decode()
        t1 = time.perf_counter()
        tensor = preprocess(image, classifier.contract)
    except EdgeclsError as e:
        return _Prepared(path, None, None, str(e), (time.perf_counter() - t0) * 1e3, 0.0)
    except Exception as e:  # cv2.error, MemoryError on absurd images: still one row, never a traceback
        return _Prepared(
            path,
            None,
            None,
            f"{path}: {type(e).__name__}: {e}".splitlines()[0],
            (time.perf_counter() - t0) * 1e3,
            0.0,
        )
    t2 = time.perf_counter()
    return _Prepared(path, tensor, image if keep_image else None, None, (t1 - t0) * 1e3, (t2 - t1) * 1e3)


def classify_files(
    classifier: Classifier,
    paths: Sequence[str],
    top_k: int = 5,
    batch_size: int = 8,
    workers: int | None = None,
    keep_images: bool = False,
    max_bytes: int = DEFAULT_MAX_FILE_MB * MB,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[ImageResult]:
    """Classify image files in order, ``batch_size`` at a time, decoding with ``workers`` threads.

    Unreadable files (missing, not regular, over ``max_bytes`` or ``max_pixels``, undecodable) yield an
    :class:`ImageResult` with ``error`` set; the rest go on.
    """
    if batch_size < 1:
        raise EdgeclsError(f"--batch-size must be >= 1, got {batch_size}")
    workers = workers or default_workers()
    prefetch = 2 * batch_size + workers
    pending: deque[Future[_Prepared]] = deque()
    todo = iter(paths)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
    try:

        def refill() -> None:
            while len(pending) < prefetch:
                path = next(todo, None)
                if path is None:
                    return
                pending.append(pool.submit(_prepare, path, classifier, keep_images, max_bytes, max_pixels))

        refill()
        while pending:
            ready: list[_Prepared] = []
            while pending and len(ready) < batch_size:
                ready.append(pending.popleft().result())
            refill()  # keep the decoders busy while this batch runs
            yield from _classify_ready(classifier, ready, top_k)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _classify_ready(classifier: Classifier, ready: list[_Prepared], top_k: int) -> Iterator[ImageResult]:
    good = [p for p in ready if p.tensor is not None]
    preds: list[list[Prediction]] = []
    share = 0.0
    if good:
        t0 = time.perf_counter()
        preds = classifier.classify(np.stack([p.tensor for p in good]), top_k)
        share = (time.perf_counter() - t0) * 1e3 / len(good)
    it = iter(preds)
    for p in ready:
        if p.tensor is None:
            yield ImageResult(p.source, None, p.error, 0.0, p.decode_ms)
        else:
            yield ImageResult(p.source, next(it), None, p.preprocess_ms + share, p.decode_ms, p.image)


def classify_encoded(
    classifier: Classifier, items: Sequence[tuple[str, bytes]], top_k: int = 5, max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[ImageResult]:
    """Classify images whose bytes were read elsewhere (Ray Data, an object store), as one batch.

    ``items`` are ``(name, encoded bytes)``; each image is decoded and preprocessed exactly as
    :func:`classify_files` does for the file ``name`` (same reduced JPEG decoding, same error messages),
    so both give the same rows for the same files.
    """
    floor = decode_floor(classifier.contract)
    ready = [
        _prepare_with(name, lambda data=data, name=name: decode_bytes(data, name, floor, max_pixels=max_pixels),
                      classifier, False)
        for name, data in items
    ]
    return list(_classify_ready(classifier, ready, top_k))


def classify_files_sequential(
    classifier: Classifier, paths: Sequence[str], top_k: int = 5, max_bytes: int = DEFAULT_MAX_FILE_MB * MB
) -> Iterator[ImageResult]:
    """The one-by-one loop (decode, preprocess, infer, repeat): the baseline the benchmark compares with."""
    for path in paths:
        p = _prepare(path, classifier, False, max_bytes, DEFAULT_MAX_PIXELS)
        yield from _classify_ready(classifier, [p], top_k)
