"""The routes about the served model: what it is (``/v1/model``), whether it is healthy (``/healthz``,
``/readyz``), and replacing it (``POST /v1/reload``, also what SIGHUP does).

``/healthz`` answers from what is cached (the model's file name and sha256 and its golden result, computed when
it was loaded): probes cost no model call. A reload runs in a thread beside the serving model
(:meth:`ModelSlot.reload`); its outcome is one line on stderr and, for ``POST /v1/reload``, the answer.

Who may reload: with ``--token``, whoever has the token (every ``/v1`` route needs it); without one, clients on
this machine only (a loopback peer address). Requests with an ``Origin`` header (sent by browsers) are refused
either way, so a web page the operator visits cannot make a token-less server reload (a cross-site form POST
needs no CORS permission). The path reloaded is always the one serve was started with.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edgecls.runtime.serve.served_model import ReloadOutcome
from edgecls.runtime.serve.settings import is_loopback
from edgecls.runtime.serve.state import ServeState, error_response, serve_state
from edgecls.runtime.serve.uploads import ApiError


async def model_info(request: Request) -> Response:
    state = serve_state(request)
    served, s = state.models.current, state.settings
    clf = served.clf
    return JSONResponse({
        "model": Path(clf.name).name,
        "sha256": served.sha256,
        "golden": served.golden.result,
        "variant": clf.contract.provenance.get("variant"),
        "contract": clf.contract.to_dict(),
        "providers": {"requested": clf.info.requested, "used": clf.info.used, "fallback": clf.info.fallback},
        "engine": clf.info.engine,
        "precision": clf.info.precision,  # OpenVINO's compiled precision (f32/bf16/f16); None on onnxruntime
        "batch": clf.fixed_batch or "dynamic",
        "serving": {"max_batch": s.max_batch, "max_wait_ms": s.max_wait_ms, "max_queue": s.max_queue,
                    "max_body_bytes": s.max_body_bytes, "max_pixels": s.max_pixels,
                    "request_timeout_s": s.request_timeout_s, "top_k": s.top_k, "auth": s.token is not None,
                    "max_jpeg_scans": s.max_jpeg_scans, "header_timeout_s": s.header_timeout_s,
                    "keep_alive_s": s.keep_alive_s, "max_connections": s.max_connections,
                    "max_connections_per_client": s.max_connections_per_client, "min_body_rate": s.min_body_rate,
                    "body_grace_s": s.body_grace_s, "max_headers": s.max_headers},
        "live": state.feed.status() if state.feed else None,
    })


async def healthz(request: Request) -> Response:
    """Liveness and what is served: ``{"status", "uptime_s", "model": {"file", "sha256"}, "golden", "reloads"}``."""
    state = serve_state(request)
    return JSONResponse({"status": "ok", "uptime_s": round(time.monotonic() - state.started, 3),
                         **state.models.health()})


async def readyz(request: Request) -> Response:
    state = serve_state(request)
    if state.draining:
        return error_response(503, "draining", "shutting down: finishing the requests in flight")
    if not state.batcher.alive:
        return error_response(503, "not_ready", "the model worker is not running")
    return JSONResponse({"ready": True, "live": state.feed.status() if state.feed else None})


async def reload_model(state: ServeState, wait: bool) -> ReloadOutcome:
    """Reload in a thread (the event loop keeps serving) and say how it went on stderr."""
    outcome = await asyncio.to_thread(state.models.reload, wait)
    if not outcome.busy:
        from edgecls.runtime.terminal.text import plain

        print(plain(f"edgecls serve: {outcome.message}"), file=sys.stderr, flush=True)  # paths: outside text
    return outcome


def reload_soon(state: ServeState) -> None:
    """SIGHUP (called in the event loop): reload after any reload running now; the outcome goes to stderr."""
    task = asyncio.get_running_loop().create_task(reload_model(state, wait=True))
    state.reloads_running.add(task)
    task.add_done_callback(state.reloads_running.discard)


async def reload(request: Request) -> Response:
    state = serve_state(request)
    if request.headers.get("origin") is not None:
        raise ApiError(403, "forbidden", "POST /v1/reload is not taken from web pages (the request has an Origin "
                                         "header); send it with curl or a script")
    peer = request.client.host if request.client else ""
    if state.settings.token is None and not is_loopback(peer):
        raise ApiError(403, "forbidden", "POST /v1/reload without --token is answered to clients on this machine "
                                         "only")
    outcome = await reload_model(state, wait=False)
    if outcome.busy:
        raise ApiError(409, "reload_in_progress", outcome.message)
    if not outcome.ok:
        raise ApiError(422, "reload_refused", outcome.message)
    return JSONResponse({"reloaded": True, "message": outcome.message, **state.models.health()})
