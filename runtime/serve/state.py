"""What every ``edgecls serve`` route shares: the server's state, and the one shape of a refusal.

A refusal is JSON ``{"error": "<one line naming the problem>", "kind": "<kind>"}`` with its status.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.serve.batcher import DynamicBatcher
from edgecls.runtime.serve.decode_pool import DecodePool
from edgecls.runtime.serve.live_feed import LiveFeed
from edgecls.runtime.serve.metrics import ServeMetrics
from edgecls.runtime.serve.served_model import ModelSlot
from edgecls.runtime.serve.settings import ServeSettings


@dataclass
class ServeState:
    """Everything the routes share; ``draining`` is set on SIGTERM so endless streams end.

    ``drain_cut`` (made when the app starts) is resolved ``--drain-timeout`` seconds after SIGTERM: requests
    still in flight then get a 503 and are counted in ``cut_requests``.
    """

    models: ModelSlot  # the served model; a reload swaps it
    settings: ServeSettings
    batcher: DynamicBatcher
    metrics: ServeMetrics
    decode_pool: DecodePool | None  # None: uploads are decoded in the model's thread
    feed: LiveFeed | None = None
    draining: bool = False
    started: float = field(default_factory=time.monotonic)
    loop: asyncio.AbstractEventLoop | None = None
    drain_cut: asyncio.Future[None] | None = None
    cut_requests: int = 0
    reload_pending: bool = False  # SIGHUP before the event loop ran: reload once it does
    reloads_running: set[asyncio.Task[Any]] = field(default_factory=set)  # kept referenced until they end

    @property
    def clf(self) -> Classifier:
        """The Classifier new requests use now (a request keeps the one it started with: see served_model)."""
        return self.models.current.clf

    def begin_drain(self) -> None:
        """SIGTERM/SIGINT (from the signal handler): streams end now, in-flight requests are cut at the timeout."""
        first = not self.draining
        self.draining = True
        if first and self.loop is not None and self.drain_cut is not None:
            self.loop.call_soon_threadsafe(self.loop.call_later, self.settings.drain_timeout_s, self._cut)

    def _cut(self) -> None:
        if self.drain_cut is not None and not self.drain_cut.done():
            self.drain_cut.set_result(None)


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "kind": kind}, status_code=status, headers=headers)


def serve_state(request: Request) -> ServeState:
    return request.app.state.serve
