"""What every ``edgecls serve`` route shares: the server's state, and the one shape of a refusal.

A refusal is JSON ``{"error": "<one line naming the problem>", "kind": "<kind>"}`` with its status.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse

from edgecls.runtime.classifier import Classifier
from edgecls.runtime.serve.batcher import DynamicBatcher
from edgecls.runtime.serve.live_feed import LiveFeed
from edgecls.runtime.serve.metrics import ServeMetrics
from edgecls.runtime.serve.settings import ServeSettings


@dataclass
class ServeState:
    """Everything the routes share; ``draining`` is set on SIGTERM so endless streams end."""

    clf: Classifier
    settings: ServeSettings
    batcher: DynamicBatcher
    metrics: ServeMetrics
    decode_pool: ThreadPoolExecutor | None  # None: uploads are decoded in the model's thread
    feed: LiveFeed | None = None
    draining: bool = False
    started: float = field(default_factory=time.monotonic)


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "kind": kind}, status_code=status, headers=headers)


def serve_state(request: Request) -> ServeState:
    return request.app.state.serve
