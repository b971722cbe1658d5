"""Decode threads for uploads, where a decode whose request gave up does not keep a thread from the others.

A thread cannot be stopped in the middle of ``cv2.imdecode``. With a plain ``ThreadPoolExecutor`` a decode
that outlives its request (504) kept its thread to the end, so a few slow uploads held every decode thread and
all other uploads timed out behind them, and the process exit waited for them too. Here:

- a job not started when its request gives up is dropped (its future is cancelled; the thread skips it);
- a job already running is *abandoned*: its thread finishes the decode and then ends, while a new thread
  takes its place at once, so ``threads`` threads keep serving. At most ``threads`` abandoned decodes run at
  a time (the CPU they burn is bounded by the pre-decode limits: pixels, JPEG scans, body size); past that
  no replacement is started and the pool serves with what it has until they end;
- the threads are daemons and :meth:`shutdown` does not wait, so SIGTERM never waits for a decode.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Job:
    fn: Callable[[], Any]
    future: Future[Any] = field(default_factory=Future)
    abandoned: bool = False


class DecodePool:
    def __init__(self, threads: int, name: str = "edgecls decode", on_abandon: Callable[[], Any] | None = None) -> None:
        self.threads = threads
        self._on_abandon = on_abandon
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._abandoned = 0  # decodes still running for requests that gave up
        self._running = 0  # decodes running now
        self._closed = False
        for _ in range(threads):
            self._spawn()

    @property
    def running(self) -> int:
        return self._running

    def _spawn(self) -> None:
        threading.Thread(target=self._work, name=self._name, daemon=True).start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if not job.future.set_running_or_notify_cancel():
                continue  # its request gave up while it was queued
            with self._lock:
                self._running += 1
            try:
                job.future.set_result(job.fn())
            except BaseException as e:  # the request's own failure (ApiError, ...), delivered to it
                job.future.set_exception(e)
            with self._lock:
                self._running -= 1
                if job.abandoned:  # a replacement took this thread's place: end it
                    self._abandoned -= 1
                    return

    async def run(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on a decode thread; cancelling the awaiting task drops or abandons the job (see module doc)."""
        job = _Job(fn)
        self._jobs.put(job)
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            self._abandon(job)
            raise

    def _abandon(self, job: _Job) -> None:
        # wrap_future has already tried job.future.cancel(): that only succeeds for a job not yet started.
        with self._lock:
            if not job.future.running() or self._closed or self._abandoned >= self.threads:
                return
            job.abandoned = True
            self._abandoned += 1
        self._spawn()
        if self._on_abandon is not None:
            self._on_abandon()

    def shutdown(self) -> None:
        """Drop the queued jobs and let the threads end; never waits for a running decode."""
        with self._lock:
            self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.cancel()
        for _ in range(self.threads + self._abandoned):
            self._jobs.put(None)
