"""The HTTP routes of ``edgecls serve`` (Starlette): classify uploads, describe the model, show a live source.

- ``POST /v1/classify[?top_k=K]``: a raw image body (``image/*``, ``application/octet-stream``) or multipart;
  returns the row ``edgecls run --json`` prints: ``{"source", "top_k": [{"label", "index", "score"}], "latency_ms"}``.
- ``GET /v1/model``: contract, variant, providers requested and really used, limits, live source status.
- ``GET /v1/latest`` (live_routes.py): the newest live result (``age_ms``: frame capture to now).
- ``GET /v1/stream``: MJPEG of the newest frames with the top-k drawn on them.
- ``GET /v1/events``: server-sent events, one per live result (``age_ms``: frame capture to result).
- ``POST /v1/reload`` (model_routes.py): load the model file again and swap it in when it passes its golden check.
- ``GET /healthz`` (the served model's file, sha256 and golden result), ``/readyz`` (503 while draining),
  ``/metrics`` (Prometheus text), ``/`` (the page).

Every request must name one valid host this server answers (authority.py: 400 ``bad_host``, 421 ``wrong_host``).
Every ``/v1`` route requires the bearer token when one is set (``Authorization: Bearer T``; browsers' ``<img>``
and ``EventSource`` cannot send headers, so ``?token=T`` is accepted too). Every refusal is JSON
``{"error": "<one line naming the problem>", "kind": "<kind>"}`` with a 4xx status (503/504 when overloaded or
too slow), counted in ``edgecls_errors{kind}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgecls.runtime.inference.classifier import InferenceError
from edgecls.runtime.serve.authority import TARGET_EXTENSION, check_request_host
from edgecls.runtime.serve.batcher import DynamicBatcher, ServerBusy
from edgecls.runtime.serve.decode_pool import DecodePool
from edgecls.runtime.serve.live_feed import LiveFeed
from edgecls.runtime.serve.live_routes import events, latest, stream
from edgecls.runtime.serve.metrics import ServeMetrics
from edgecls.runtime.serve.model_routes import healthz, model_info, readyz, reload, reload_soon
from edgecls.runtime.serve.served_model import ModelSlot, warm_up
from edgecls.runtime.serve.settings import ServeSettings, accepted_hosts
from edgecls.runtime.serve.state import ServeState, error_response, serve_state
from edgecls.runtime.serve.uploads import ApiError, parse_top_k, prepare_upload, read_upload
from edgecls.runtime.sources.records import Record
from edgecls.runtime.sources.source_specs import SourceSpec

ROUTES = ("/", "/v1/classify", "/v1/model", "/v1/reload", "/v1/latest", "/v1/stream", "/v1/events", "/healthz",
          "/readyz", "/metrics")


class GuardAndCount:
    """Pure ASGI middleware: the host a request names (one valid Host; loopback binds answer loopback names only),
    the bearer token on /v1 routes, and the request counter by route and status."""

    def __init__(self, app: ASGIApp, state: ServeState) -> None:
        self.app = app
        self.state = state
        token = state.settings.token
        self.token = token.encode() if token else None
        self.hosts = accepted_hosts(state.settings)

    def _authorized(self, scope: Scope) -> bool:
        assert self.token is not None
        for key, value in scope.get("headers", []):
            if key == b"authorization" and value[:7].lower() == b"bearer ":
                return hmac.compare_digest(value[7:].strip(), self.token)
        query = Request(scope).query_params.get("token")
        return query is not None and hmac.compare_digest(query.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            target = (scope.get("extensions") or {}).get(TARGET_EXTENSION)
            refusal = check_request_host(scope.get("headers", []), target, scope.get("http_version", "1.1"),
                                         self.hosts)
            if refusal is not None:  # 400 malformed or ambiguous; 421 a name this loopback server must not answer
                self.state.metrics.errors.labels(refusal.kind).inc()
                response = error_response(refusal.status, refusal.kind, refusal.message)
                await response(scope, receive, counting_send)
            elif path.startswith("/v1/") and self.token is not None and not self._authorized(scope):
                self.state.metrics.errors.labels("unauthorized").inc()
                response = error_response(
                    401, "unauthorized", "missing or wrong token: send 'Authorization: Bearer TOKEN'",
                    {"WWW-Authenticate": 'Bearer realm="edgecls"'},
                )
                await response(scope, receive, counting_send)
            else:
                await self.app(scope, receive, counting_send)
        finally:
            route = path if path in ROUTES else "other"
            self.state.metrics.requests.labels(route, str(status)).inc()


# --- classify ------------------------------------------------------------------------------------------------
async def _classify_one(state: ServeState, request: Request, top_k: int) -> dict[str, Any]:
    expectation = state.batcher.expect()  # lets a forming batch wait for this request (see batcher)
    clf = state.clf  # this request's model to its end, whatever a reload swaps in meanwhile
    try:
        name, data = await read_upload(request, state.settings.max_body_bytes)
        s = state.settings
        prepare = functools.partial(prepare_upload, data, name, clf.contract, s.max_pixels, s.max_jpeg_scans)
        t0 = time.perf_counter()
        if state.decode_pool is None:
            x: np.ndarray | Callable[[], np.ndarray] = prepare  # decoded by the model's thread (see batcher)
            prep_ms = 0.0
        else:
            x = await state.decode_pool.run(prepare)
            prep_ms = (time.perf_counter() - t0) * 1e3
        try:
            future = state.batcher.submit(clf, x, top_k, expectation)
        except ServerBusy as e:
            raise ApiError(503, "busy", str(e)) from e
        try:
            result = await asyncio.wrap_future(future)
        except InferenceError as e:
            raise ApiError(500, "inference_failed", str(e)) from e
    finally:
        expectation.withdraw()
    return Record(name, result.predictions, prep_ms + result.infer_ms).to_dict()


async def classify(request: Request) -> Response:
    state = serve_state(request)
    t0 = time.perf_counter()
    top_k = parse_top_k(request.query_params.get("top_k"), state.settings.top_k)
    state.metrics.in_flight.inc()
    timeout = state.settings.request_timeout_s
    work = asyncio.ensure_future(asyncio.wait_for(_classify_one(state, request, top_k), timeout))
    try:
        # Racing the drain cut: past --drain-timeout after SIGTERM this request is answered 503 and its work
        # cancelled (a decode running on a thread is abandoned, see decode_pool), so the process can exit.
        waiting = {work} if state.drain_cut is None else {work, state.drain_cut}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            state.cut_requests += 1
            raise ApiError(503, "shutting_down", "the server is shutting down and this request did not finish "
                                                 f"within --drain-timeout ({state.settings.drain_timeout_s:g} s)")
        row = work.result()
    except asyncio.TimeoutError as e:
        raise ApiError(504, "timeout", f"no result within {state.settings.request_timeout_s:g} s "
                                       "(--request-timeout)") from e
    finally:
        work.cancel()  # no-op when done; else the drain cut or our own cancellation
        state.metrics.in_flight.dec()
    state.metrics.latency.observe(time.perf_counter() - t0)
    return JSONResponse(row)


# --- metrics and the page ------------------------------------------------------------------------------------
async def metrics(request: Request) -> Response:
    body, content_type = serve_state(request).metrics.render()
    return Response(body, media_type=content_type)


_PAGE = resources.files("edgecls.runtime.serve").joinpath("page.html")


async def page(request: Request) -> Response:
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})


# --- errors ----------------------------------------------------------------------------------------------------
async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    serve_state(request).metrics.errors.labels(exc.kind).inc()
    return error_response(exc.status, exc.kind, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    serve_state(request).metrics.errors.labels(kind).inc()
    return error_response(exc.status_code, kind, f"{request.method} {request.url.path}: {exc.detail}")


def build_app(
    models: ModelSlot, settings: ServeSettings, live: SourceSpec | None = None
) -> tuple[Starlette, ServeState]:
    """The ASGI app and its state (``models`` started); the batcher and the live feed start with the app's
    lifespan."""
    from PIL import Image

    # Pillow only reads upload headers here (never decodes): its own bomb ceiling would hide the declared size
    # from the 413 message, and ``settings.max_pixels`` is the limit that applies.
    Image.MAX_IMAGE_PIXELS = None
    Image.init()  # import every format plugin now, not during the first upload
    metrics_ = ServeMetrics()
    batcher = DynamicBatcher(settings.max_batch, settings.max_wait_ms / 1e3, settings.max_queue,
                             on_batch=metrics_.observe_batch)
    metrics_.watch_queue(lambda: batcher.depth)
    pool = (DecodePool(settings.decode_threads, on_abandon=metrics_.decodes_abandoned.inc)
            if settings.decode_threads > 0 else None)
    state = ServeState(models, settings, batcher, metrics_, pool)
    if live is not None:
        state.feed = LiveFeed(live, lambda: state.clf, batcher, metrics_, top_k=settings.top_k)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        warm_up(state.clf, settings.max_batch)  # before /readyz says yes (a reload warms its model up too)
        batcher.start()
        state.loop = asyncio.get_running_loop()
        state.drain_cut = state.loop.create_future()
        if state.feed is not None:
            state.feed.start(state.loop)
        if state.reload_pending:  # SIGHUP while starting: the model loaded may already be the old one
            reload_soon(state)
        yield
        state.draining = True
        if state.feed is not None:
            state.feed.stop()
        # Requests still waiting were answered (finished or cut) before the lifespan ends: what the batcher
        # still holds belongs to nobody, and a model call or decode in progress is not waited for long.
        batcher.stop(timeout=0.5)
        if state.decode_pool is not None:
            state.decode_pool.shutdown()

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/v1/classify", classify, methods=["POST"]),
            Route("/v1/model", model_info),
            Route("/v1/reload", reload, methods=["POST"]),
            Route("/v1/latest", latest),
            Route("/v1/stream", stream),
            Route("/v1/events", events),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        middleware=[Middleware(GuardAndCount, state=state)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.serve = state
    return app, state
