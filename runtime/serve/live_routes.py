"""The live-source routes of ``edgecls serve``: the newest result, an MJPEG view and server-sent events.

Each answers 404 when the server has no live source; the endless ones end when the server drains.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from edgecls.runtime.serve.live_feed import LiveFeed
from edgecls.runtime.serve.state import ServeState, serve_state
from edgecls.runtime.serve.uploads import ApiError

MJPEG_BOUNDARY = "frame"


def _feed(state: ServeState) -> LiveFeed:
    if state.feed is None:
        raise ApiError(404, "no_live_source", "this server has no live source (start it with --camera N or "
                                              "--source URL|FILE)")
    return state.feed


async def latest(request: Request) -> Response:
    state = serve_state(request)
    feed = _feed(state)
    result = feed.latest
    if result is None:
        why = f" ({feed.error})" if feed.error else ""
        raise ApiError(503, "no_result_yet", f"{feed.spec.name}: no result yet{why}")
    row = result.record.to_dict()
    row["age_ms"] = round((time.monotonic() - result.captured) * 1e3, 3)  # how old the frame is as you read it
    return JSONResponse(row)


async def stream(request: Request) -> Response:
    state = serve_state(request)
    feed = _feed(state)

    async def frames() -> AsyncIterator[bytes]:
        seq = 0
        loop = asyncio.get_running_loop()
        while not state.draining:
            result = await feed.wait_newer(seq, 1.0)
            if result is None:
                continue
            seq = result.seq
            jpeg = await loop.run_in_executor(None, feed.jpeg, result)
            head = f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            yield head.encode() + jpeg + b"\r\n"

    return StreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}",
                             headers={"Cache-Control": "no-store"})


async def events(request: Request) -> Response:
    state = serve_state(request)
    feed = _feed(state)

    async def results() -> AsyncIterator[bytes]:
        seq, idle = 0, 0
        yield b"retry: 1000\n\n"
        while not state.draining:  # checked every second, so a drain is not held up by this stream
            result = await feed.wait_newer(seq, 1.0)
            if result is None:
                idle += 1
                if idle % 10 == 0:  # a comment line keeps proxies from closing a quiet stream
                    yield b": keep-alive\n\n"
                continue
            seq, idle = result.seq, 0
            yield f"id: {seq}\ndata: {json.dumps(result.record.to_dict())}\n\n".encode()

    return StreamingResponse(results(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
