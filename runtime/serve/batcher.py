"""Dynamic batching: concurrent requests become one ``Classifier.probabilities`` call in a worker thread.

Shapes: each request submits ``float32[3, h, w]`` (already preprocessed) -> the worker stacks up to
``max_batch`` of them into ``float32[N, 3, h, w]`` -> ``float32[N, C]`` probabilities -> top-k per request.

When to close a batch: the worker takes whatever is queued (up to ``max_batch``) at once; it waits up to
``max_wait_s`` for more only while requests are known to be on their way (announced with :meth:`expect`
when a request arrives, before its body is read and decoded). A lone client therefore never waits, and
under load a batch fills while the previous one runs. All model calls happen in this one thread, so
onnxruntime's own threads are never oversubscribed by concurrent calls.

Each request names the Classifier it was preprocessed for (a reload swaps the served model while requests of
the old one are still queued, and the two may differ in input size or labels): a batch holds one Classifier's
requests only, and the first request of another Classifier starts the next batch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.inference.classifier import Classifier, Prediction, top_k_predictions


class ServerBusy(EdgeclsError):
    """The queue in front of the model is full (the request may be retried later)."""


@dataclass(frozen=True)
class BatchResult:
    predictions: list[Prediction]
    infer_ms: float  # this image's share of its batch's model call (softmax and top-k included)
    batch_size: int


@dataclass
class _Item:
    clf: Classifier  # the session this input was preprocessed for, and runs on
    x: np.ndarray | Callable[[], np.ndarray]  # float32[3, h, w], or what makes it (run in the worker)
    top_k: int
    future: Future[BatchResult]


class Expectation:
    """A request announced to the batcher; :meth:`withdraw` (idempotent) when it will not be submitted."""

    def __init__(self, batcher: DynamicBatcher) -> None:
        self._batcher = batcher
        self._open = True

    def withdraw(self) -> None:
        if self._open:
            self._open = False
            self._batcher._arrived(-1)


class DynamicBatcher:
    """One worker thread in front of the model; :meth:`submit` returns a future of the result."""

    def __init__(
        self,
        max_batch: int = 8,
        max_wait_s: float = 0.002,
        max_queue: int = 256,
        on_batch: Callable[[int, float], None] | None = None,  # (batch size, model seconds)
    ) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._carried: _Item | None = None  # another Classifier's request that ended the last batch: next one's first
        self._incoming = 0  # announced requests not yet submitted
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="edgecls batcher", daemon=True)
        self._closed = False

    # --- request side ------------------------------------------------------------------------------------
    def start(self) -> DynamicBatcher:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    @property
    def depth(self) -> int:
        """Images waiting for the model (not counting the batch running now)."""
        return self._queue.qsize()

    def expect(self) -> Expectation:
        self._arrived(1)
        return Expectation(self)

    def _arrived(self, n: int) -> None:
        with self._lock:
            self._incoming += n

    def submit(
        self, clf: Classifier, x: np.ndarray | Callable[[], np.ndarray], top_k: int,
        expectation: Expectation | None = None,
    ) -> Future[BatchResult]:
        """Queue one image preprocessed for ``clf`` (which runs it), or a callable the worker runs to make it
        (decoding in the model's thread: no thread hand-over per request, no decode competing with onnxruntime's
        threads); an exception it raises becomes that request's result alone. ``expectation`` (from
        :meth:`expect`) is consumed."""
        if expectation is not None:
            expectation.withdraw()
        if self._closed:
            raise ServerBusy("the server is shutting down")
        if self._queue.qsize() >= self.max_queue:
            raise ServerBusy(f"{self.max_queue} images are already waiting for the model (--max-queue); retry later")
        future: Future[BatchResult] = Future()
        self._queue.put(_Item(clf, x, top_k, future))
        return future

    def stop(self, timeout: float = 10.0) -> None:
        """Finish everything already queued, then end the worker."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)

    # --- worker ---------------------------------------------------------------------------------------------
    def _gather(self, first: _Item) -> tuple[list[_Item], bool]:
        """``first`` plus what is queued or on its way for the same Classifier, up to max_batch; True when the
        stop marker was seen. A request for another Classifier ends the batch and is carried to the next."""
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                with self._lock:
                    coming = self._incoming > 0
                if not coming or remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=min(remaining, 0.0005))
                except queue.Empty:
                    continue
            if item is None:
                return batch, True
            if item.clf is not first.clf:
                self._carried = item
                break
            batch.append(item)
        return batch, False

    def _work(self) -> None:
        while True:
            first, self._carried = self._carried or self._queue.get(), None
            if first is None:
                return
            batch, stop = self._gather(first)
            self._run([it for it in batch if it.future.set_running_or_notify_cancel()])
            if stop:
                return

    def _run(self, items: list[_Item]) -> None:
        t0 = time.perf_counter()
        batch = []
        for it in items:
            if callable(it.x):
                try:
                    it.x = it.x()
                except Exception as e:  # a bad upload fails its own request only
                    it.future.set_exception(e)
                    continue
            batch.append(it)
        if not batch:  # every caller gave up (timed out) while queued, or every upload was bad
            return
        try:
            clf = batch[0].clf  # one Classifier per batch (see _gather)
            probs = clf.probabilities(np.stack([it.x for it in batch]))  # type: ignore[misc]
            preds = [top_k_predictions(probs[i : i + 1], clf.labels, it.top_k)[0] for i, it in enumerate(batch)]
        except Exception as e:  # InferenceError and anything else: every waiting request gets it, the worker lives on
            for it in batch:
                it.future.set_exception(e)
            return
        seconds = time.perf_counter() - t0
        share_ms = seconds * 1e3 / len(batch)
        for it, p in zip(batch, preds, strict=True):
            it.future.set_result(BatchResult(p, share_ms, len(batch)))
        if self._on_batch is not None:
            self._on_batch(len(batch), seconds)
