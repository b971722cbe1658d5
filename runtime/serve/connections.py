"""Connection limits uvicorn's httptools protocol lacks: a header timeout, a header size limit, a connection cap
(and its refusals of malformed requests as JSON, like every other refusal of the server).

Measured before this module: under a 300-descriptor limit (``RLIMIT_NOFILE``), 400 sockets opened to the
server and left silent (no token needed) made every new request fail, because uvicorn 0.54 arms its
keep-alive timeout only after a response (a connection that never sends a request is kept forever), has no
header timeout (a request line sent one byte at a time is waited for forever), and ``limit_concurrency``
only answers 503 to new *requests* once that many connections are open, which is no help when the sockets
themselves use up the descriptors (accept() then fails and libuv drops the pending connections).

So, per connection: the request line and headers must arrive within ``header_timeout_s`` of the connection
opening or of the previous response (a kept-alive connection also has uvicorn's ``timeout_keep_alive``), and
may not exceed ``max_header_bytes`` (431; h11 has ``h11_max_incomplete_event_size`` for this, httptools has no
limit). Across connections: at most ``cap`` are open, ``cap`` being ``--max-connections`` lowered to leave
descriptors for the model and the process; a new connection beyond it closes the connection that has waited
longest for a request (an idle or trickling one, never one whose request is being handled), or itself when
every connection is busy. Idle sockets therefore cannot keep a new client out for longer than it takes to
open its connection.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DESCRIPTORS_RESERVED = 64  # for the model, onnxruntime, the live source, logs and the listening socket


@dataclass(frozen=True)
class ConnectionLimits:
    cap: int
    header_timeout_s: float
    max_header_bytes: int
    # Called with the reason of each close by limit: "header_timeout", "evicted", "refused", "headers_too_large".
    on_close: Callable[[str], Any] = field(default=lambda reason: None)


def connection_cap(max_connections: int) -> int:
    """``max_connections``, lowered so the open connections can never use up the process's descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - DESCRIPTORS_RESERVED))


def _refusal(status: bytes, kind: str, message: str) -> bytes:
    """A whole HTTP response in the app's refusal shape, written by the protocol itself (no app involved)."""
    body = json.dumps({"error": message, "kind": kind}).encode()
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with the limits above (pass as ``uvicorn.Config(http=...)``)."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _awaiting_since: float | None = None  # loop time since when a request's headers are awaited; None: busy
        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0  # bytes received since the parser began expecting a request line
        _in_headers = True  # the parser expects a request line or headers (not a body)
        _heads = 0  # request heads completed on this connection

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_request()
            if len(self.connections) > limits.cap:
                self._make_room()

        def _await_request(self) -> None:
            self._awaiting_since = self.loop.time()
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(limits.header_timeout_s, self._header_timeout)

        def _header_timeout(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                limits.on_close("header_timeout")
                self.transport.close()

        def _make_room(self) -> None:
            waiting = [c for c in self.connections if isinstance(c, GuardedHttpToolsProtocol)
                       and c is not self and c._awaiting_since is not None and not c.transport.is_closing()]
            victim = min(waiting, key=lambda c: c._awaiting_since) if waiting else self  # type: ignore[arg-type, return-value]
            limits.on_close("evicted" if waiting else "refused")
            victim.transport.close()

        def data_received(self, data: bytes) -> None:
            # Counted only when the whole chunk went to a request line or headers: a chunk that ends the previous
            # body (a refused upload still arriving) or starts a body is not header bytes.
            counted, heads = self._in_headers, self._heads
            super().data_received(data)
            if not (counted and self._in_headers and heads == self._heads):  # a whole request may fit in one chunk
                return
            self._header_bytes += len(data)
            if self._header_bytes > limits.max_header_bytes and not self.transport.is_closing():
                limits.on_close("headers_too_large")
                self.transport.write(_refusal(b"431 Request Header Fields Too Large", "headers_too_large",
                                              f"request line and headers exceed {limits.max_header_bytes} bytes"))
                self.transport.close()

        def send_400_response(self, msg: str) -> None:
            # uvicorn's own answer to a request the parser rejects is plain text; every refusal here is JSON.
            self.transport.write(_refusal(b"400 Bad Request", "bad_request", f"malformed HTTP request ({msg})"))
            self.transport.close()

        def on_message_complete(self) -> None:
            self._in_headers, self._header_bytes = True, 0  # the parser now expects the next request
            super().on_message_complete()

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._heads += 1
            self._awaiting_since = None
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            pipelined = bool(self.pipeline)  # a queued request, its headers complete, starts now: not idle
            super().on_response_complete()
            if not pipelined and not self.transport.is_closing():
                self._await_request()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

    return GuardedHttpToolsProtocol
