"""Connection limits uvicorn's httptools protocol lacks: header timeout, size and count, a minimum body rate, a
connection cap with eviction, a per-client cap (and their refusals as JSON, like every other refusal of the server).

Measured before this module: under a 300-descriptor limit (``RLIMIT_NOFILE``), 400 sockets opened to the
server and left silent (no token needed) made every new request fail, because uvicorn 0.54 arms its
keep-alive timeout only after a response (a connection that never sends a request is kept forever), has no
header timeout (a request line sent one byte at a time is waited for forever), and ``limit_concurrency``
only answers 503 to new *requests* once that many connections are open, which is no help when the sockets
themselves use up the descriptors (accept() then fails and libuv drops the pending connections). Then (issue
#30) 300 connections sending their headers at once and then one body byte every 2 s kept a normal client out
(1 success in 81 tries with Content-Length bodies, 0 in 52 chunked): a request whose body was arriving counted
as busy, was never evicted, and held its slot until its 504 at 30 s; and 7,300 tiny headers (under 64 KiB)
raised a normal client's median from ~3 to 70 ms.

So, per connection: the request line and headers must arrive within ``header_timeout_s`` of the connection
opening or of the previous response (a kept-alive connection also has uvicorn's ``timeout_keep_alive``), may
not exceed ``max_header_bytes`` (431; h11 has ``h11_max_incomplete_event_size`` for this, httptools has no
limit) nor ``max_headers`` lines (431, the parser stopped at the first line over); a body must average
``min_body_rate`` bytes/s once ``body_grace_s`` has passed (Apache's mod_reqtimeout ``MinRate`` rule: the
deadline moves 1/rate s later per byte received), else it gets a 408 and is closed.

Across connections, a new one beyond a cap makes room by closing the connection that has *stalled* longest: one
waiting for a request (idle or trickling its headers) for the time it has waited, one receiving a body for the
time its bytes do not cover at ``min_body_rate``; a connection whose request is being handled, or whose body
keeps the rate, is never chosen (the new connection is refused instead). The caps: ``cap`` (``--max-connections``
lowered to leave descriptors for the model and the process) over all connections, and ``per_client`` over the
connections of one IP address, among which the same choice is made. A client arriving while slow bodies hold
every slot therefore gets one, and one address cannot take the whole server.

uvicorn internals relied on (``tests/test_serve_connections.py`` checks they exist): the parser callbacks
(``on_message_begin``, ``on_header``, ``on_headers_complete``, ``on_body``, ``on_message_complete``), uvicorn's
``on_response_complete``, ``send_400_response`` (called when the parser raises), and the attributes
``connections``, ``client``, ``loop``, ``transport``, ``pipeline``, ``flow.read_paused``, ``scope``, ``url``
and ``cycle.response_started``.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from edgecls.runtime.serve.authority import TARGET_EXTENSION

DESCRIPTORS_RESERVED = 64  # for the model, onnxruntime, the live source, logs and the listening socket


@dataclass(frozen=True)
class ConnectionLimits:
    cap: int
    header_timeout_s: float
    max_header_bytes: int
    max_headers: int = 100
    per_client: int = 64  # connections from one IP address
    min_body_rate: float = 1024.0  # bytes/s once the grace has passed; 0: no minimum
    body_grace_s: float = 10.0
    # Called with the reason of each close by limit: "header_timeout", "evicted", "refused", "evicted_client",
    # "refused_client", "slow_body", "headers_too_large", "too_many_headers".
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


class _StopParsing(Exception):
    """Raised in a parser callback to stop httptools at once; the refusal to write is already chosen."""


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with the limits above (pass as ``uvicorn.Config(http=...)``)."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _awaiting_since: float | None = None  # loop time since when a request's headers are awaited; None: busy
        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0  # bytes received since the parser began expecting a request line
        _in_headers = True  # the parser expects a request line or headers (not a body)
        _heads = 0  # request heads completed on this connection
        _header_lines = 0  # header lines of the request being parsed
        _refusal_pending: tuple[str, bytes] | None = None  # (reason, response) when a callback stopped the parser
        _body_since: float | None = None  # loop time the body being received began; None: not receiving one
        _body_bytes = 0
        _body_timer: asyncio.TimerHandle | None = None

        # --- caps and eviction --------------------------------------------------------------------------
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_request()
            open_ = [c for c in self.connections if isinstance(c, GuardedHttpToolsProtocol)
                     and not c.transport.is_closing()]
            peer = self.client[0] if self.client else None
            same_client = [c for c in open_ if c.client and c.client[0] == peer]
            if peer is not None and len(same_client) > limits.per_client:
                self._make_room(same_client, "evicted_client", "refused_client")
            if not self.transport.is_closing() and sum(not c.transport.is_closing() for c in open_) > limits.cap:
                self._make_room(open_, "evicted", "refused")

        def _stalled_s(self, now: float) -> float | None:
            """How long this connection has held its slot without progress; None: it is making progress."""
            if self._awaiting_since is not None:
                return now - self._awaiting_since
            if self._body_since is not None and limits.min_body_rate > 0:
                behind = now - self._body_since - self._body_bytes / limits.min_body_rate
                return behind if behind > 0 else None
            return None  # its request is being handled

        def _make_room(self, pool: Iterable[GuardedHttpToolsProtocol], evicted: str, refused: str) -> None:
            now = self.loop.time()
            stalled = [(s, c) for c in pool if c is not self and (s := c._stalled_s(now)) is not None]
            victim = max(stalled, key=lambda pair: pair[0])[1] if stalled else self
            limits.on_close(evicted if stalled else refused)
            victim._close()

        def _close(self) -> None:
            self._cancel_timers()
            self.transport.close()

        def _cancel_timers(self) -> None:
            for timer in (self._header_timer, self._body_timer):
                if timer is not None:
                    timer.cancel()
            self._header_timer = self._body_timer = None

        # --- headers: timeout, size, count ----------------------------------------------------------------
        def _await_request(self) -> None:
            self._awaiting_since = self.loop.time()
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(limits.header_timeout_s, self._header_timeout)

        def _header_timeout(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                limits.on_close("header_timeout")
                self._close()

        def data_received(self, data: bytes) -> None:
            # Counted only when the whole chunk went to a request line or headers: a chunk that ends the previous
            # body (a refused upload still arriving) or starts a body is not header bytes.
            counted, heads = self._in_headers, self._heads
            super().data_received(data)
            if self.transport.is_closing():
                return
            if self._body_since is not None and self._body_timer is None and limits.min_body_rate > 0:
                self._body_timer = self.loop.call_at(self._body_since + limits.body_grace_s, self._check_body_rate)
            if not (counted and self._in_headers and heads == self._heads):  # a whole request may fit in one chunk
                return
            self._header_bytes += len(data)
            if self._header_bytes > limits.max_header_bytes:
                limits.on_close("headers_too_large")
                self.transport.write(_refusal(b"431 Request Header Fields Too Large", "headers_too_large",
                                              f"request line and headers exceed {limits.max_header_bytes} bytes"))
                self._close()

        def on_message_begin(self) -> None:
            self._header_lines = 0
            super().on_message_begin()

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_lines += 1
            if self._header_lines > limits.max_headers:
                self._refusal_pending = ("too_many_headers", _refusal(
                    b"431 Request Header Fields Too Large", "too_many_headers",
                    f"more than {limits.max_headers} header lines in one request"))
                raise _StopParsing  # httptools stops here and raises a parser error: see send_400_response
            super().on_header(name, value)

        def send_400_response(self, msg: str) -> None:
            # uvicorn calls this when the parser fails, including when a callback above stopped it on purpose;
            # its own answer is plain text, every refusal here is JSON.
            pending, self._refusal_pending = self._refusal_pending, None
            if pending is not None:
                limits.on_close(pending[0])
                self.transport.write(pending[1])
            else:
                self.transport.write(_refusal(b"400 Bad Request", "bad_request", f"malformed HTTP request ({msg})"))
            self._close()

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._heads += 1
            self._awaiting_since = None
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            self._body_since, self._body_bytes = self.loop.time(), 0
            # ASGI has only the path: the app's Host check also needs an absolute-form target's host.
            self.scope.setdefault("extensions", {})[TARGET_EXTENSION] = bytes(self.url)
            super().on_headers_complete()

        # --- bodies: minimum rate -----------------------------------------------------------------------------
        def on_body(self, body: bytes) -> None:
            self._body_bytes += len(body)
            super().on_body(body)

        def _check_body_rate(self) -> None:
            self._body_timer = None
            if self._body_since is None or self.transport.is_closing():
                return
            now = self.loop.time()
            if self.flow.read_paused:  # uvicorn holds the bytes back (a pipelined request waits): not the client
                self._body_since, self._body_bytes = now, 0
                self._body_timer = self.loop.call_at(now + limits.body_grace_s, self._check_body_rate)
                return
            deadline = self._body_since + limits.body_grace_s + self._body_bytes / limits.min_body_rate
            if now < deadline:
                self._body_timer = self.loop.call_at(deadline, self._check_body_rate)
                return
            limits.on_close("slow_body")
            if self.cycle is not None and not self.cycle.response_started:
                self.transport.write(_refusal(
                    b"408 Request Timeout", "body_too_slow",
                    f"the request body arrived at {self._body_bytes / (now - self._body_since):.3g} bytes/s, "
                    f"below the minimum of {limits.min_body_rate:g} (--min-body-rate) after "
                    f"{limits.body_grace_s:g} s (--body-grace)"))
            self._close()

        def on_message_complete(self) -> None:
            self._in_headers, self._header_bytes = True, 0  # the parser now expects the next request
            self._body_since = None
            if self._body_timer is not None:
                self._body_timer.cancel()
                self._body_timer = None
            super().on_message_complete()

        def on_response_complete(self) -> None:
            pipelined = bool(self.pipeline)  # a queued request, its headers complete, starts now: not idle
            super().on_response_complete()
            if not pipelined and not self.transport.is_closing():
                self._await_request()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_timers()
            super().connection_lost(exc)

    return GuardedHttpToolsProtocol
