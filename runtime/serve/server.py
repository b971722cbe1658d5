"""Run the app under uvicorn on a socket we bind ourselves, and drain on SIGTERM/SIGINT.

Binding first gives a one-line error for a busy port and lets ``--port 0`` pick a free port that is then
printed. On SIGTERM or Ctrl-C uvicorn stops accepting connections and waits for the requests in flight; the
app's endless responses (MJPEG, server-sent events) see ``draining`` and end, so they do not hold the drain up.
``drain_timeout_s`` after the signal the app answers every request still in flight with a JSON 503 (see
``ServeState.begin_drain``), uvicorn's own graceful-shutdown timeout being only a backstop half a second later
(it would cancel the tasks: a bare 500 and tracebacks); decodes and model calls still running are not waited
for, so the process ends within the drain timeout plus about a second, and its last line says how many
requests were cut. Connections get the limits of :mod:`edgecls.runtime.serve.connections`.

SIGHUP reloads the model (:mod:`edgecls.runtime.serve.served_model`: loaded and golden-checked beside the
serving one, swapped in when it passes) instead of ending the process. uvicorn's own log lines are printed the
way edgecls prints its lines (``warning: ...``, ``error: ...``; uvicorn writes ``WARNING:  ...``), and its
per-request complaints about malformed requests are left out: those requests are answered (400) and counted.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from types import FrameType
from typing import Any

import uvicorn

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.serve.app import build_app
from edgecls.runtime.serve.connections import ConnectionLimits, connection_cap, guarded_protocol
from edgecls.runtime.serve.model_routes import reload_soon
from edgecls.runtime.serve.served_model import ModelSlot
from edgecls.runtime.serve.settings import ServeSettings
from edgecls.runtime.serve.state import ServeState
from edgecls.runtime.sources.source_specs import SourceSpec

# uvicorn's warnings about single requests it could not parse or upgrade: answered, counted, and a client can
# send them in a loop (a journal filled by an attacker).
_PER_REQUEST_NOISE = ("Invalid HTTP request received", "Unsupported upgrade request",
                      "No supported WebSocket library detected")


class _EdgeclsLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


class _NoPerRequestNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_PER_REQUEST_NOISE)


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"lines": {"()": _EdgeclsLines, "format": "%(message)s"}},
    "filters": {"quiet": {"()": _NoPerRequestNoise}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "lines", "filters": ["quiet"],
                            "stream": "ext://sys.stderr"}},
    "loggers": {"uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False}},
}


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ServeState) -> None:
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.state.begin_drain()
        super().handle_exit(sig, frame)


def bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        raise EdgeclsError(f"cannot listen on {host}:{port} ({e.strerror or e})") from e
    # Listening now, before uvicorn's start-up (the model warm-up): early clients wait in the backlog instead
    # of being refused, and the printed URL is connectable as soon as it appears.
    sock.listen(2048)
    return sock


def serve_forever(
    models: ModelSlot, settings: ServeSettings, live: SourceSpec | None = None, early_hangups: list[int] | None = None
) -> int | None:
    """Serve ``models`` (started) until SIGTERM/SIGINT, reloading on SIGHUP; returns the signal that ended it
    (after the drain), or None. ``early_hangups``: SIGHUPs caught while the model loaded (appended to until this
    installs its own handler): a reload follows once the server runs."""
    app, state = build_app(models, settings, live)
    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    limits = ConnectionLimits(
        connection_cap(settings.max_connections), settings.header_timeout_s, settings.max_header_bytes,
        max_headers=settings.max_headers, per_client=settings.max_connections_per_client,
        min_body_rate=settings.min_body_rate, body_grace_s=settings.body_grace_s,
        on_close=lambda reason: state.metrics.connections_closed.labels(reason).inc(),
    )
    config = uvicorn.Config(
        app, log_level="warning", log_config=LOG_CONFIG, access_log=False, server_header=False, lifespan="on",
        http=guarded_protocol(limits),
        # A backstop only: the app answers what is still in flight at drain_timeout_s itself (503).
        timeout_graceful_shutdown=settings.drain_timeout_s + 0.5,  # type: ignore[arg-type]  (a float works)
        timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]
    )
    server = _DrainingServer(config, state)
    url_host = f"[{host}]" if ":" in host else host
    served = models.current
    clf = served.clf
    from edgecls.runtime.terminal.text import plain

    print(plain(
        f"edgecls serve: http://{url_host}:{port}/  model {clf.name} ({', '.join(clf.providers)}; sha256 "
        f"{served.sha256[:12]}, golden {served.golden.result}), batches of up to {settings.max_batch} within "
        f"{settings.max_wait_ms:g} ms"
        + (f", live source {live.name}" if live else "") + (", token required" if settings.token else "")
        + f", up to {limits.cap} connections"),  # the model's path and the live source's name: outside text
        file=sys.stderr, flush=True,
    )
    received: list[int] = []

    def on_signal(sig: int, frame: FrameType | None) -> None:
        # Before uvicorn installs its own handlers (a signal during its start-up) this asks it to stop at once;
        # after its graceful shutdown uvicorn restores this handler and re-raises the signal it caught, which
        # lands here too instead of killing the process before the summary below.
        received.append(sig)
        server.handle_exit(sig, frame)

    def on_hangup(sig: int, frame: FrameType | None) -> None:
        # Runs in the main thread, which runs the event loop: hand the reload to the loop.
        if state.loop is None:
            state.reload_pending = True  # still starting: the lifespan reloads once the loop runs
        elif not state.draining:
            state.loop.call_soon_threadsafe(reload_soon, state)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
    state.reload_pending = state.reload_pending or bool(early_hangups)
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    served = sum(s.value for m in state.metrics.registry.collect() for s in m.samples
                 if s.name == "edgecls_http_requests_total")
    if state.cut_requests:
        ending = (f"{state.cut_requests} request(s) still in flight after --drain-timeout "
                  f"{settings.drain_timeout_s:g} s were answered 503 (shutting_down)")
    else:
        ending = "in-flight requests were finished"
    print(f"edgecls serve: stopped after {int(served)} request(s); {ending}", file=sys.stderr, flush=True)
    if state.decode_pool is not None and state.decode_pool.running:
        # A decode cut at the drain timeout still runs inside cv2.imdecode, which cannot be interrupted, and the
        # interpreter's exit would wait for it (measured: 1.2 s after this line for a scan bomb). Everything is
        # answered and flushed: end the process now, as the drain timeout promises.
        sys.stdout.flush()
        os._exit(0)
    return received[0] if received else None
