"""Property-based fuzzing of ``edgecls serve`` uploads and request heads (hypothesis), against a real server.

The property: every answer has a documented status (docs/RELIABILITY.md's serving table) and, unless it is a
200 row, the refusal shape ``{"error": "<one line>", "kind": "..."}``; never a 500, never a traceback in the
server's log; the server still answers afterwards. Inputs: random bytes and valid images in every served and
some unserved formats with random edits (flips, cuts, insertions, duplicated chunks), sent raw or multipart
under random content types; and raw HTTP request heads with random edits or cut short, on a socket.

``EDGECLS_FUZZ_EXAMPLES`` scales the examples (default 300 -> 100 uploads and 50 heads).
"""

from __future__ import annotations

import json
import socket

import cv2
import numpy as np
import pytest
from fixtures_fuzz import EXAMPLES, SEEDS, mutated_images
from fixtures_serve import ServeProcess
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

httpx = pytest.importorskip("httpx", reason="the serve tests need the dev extra (httpx)")
pytest.importorskip("starlette", reason="edgecls serve needs the serve extra: pip install 'edgecls[serve]'")

DOCUMENTED = {200, 400, 404, 405, 413, 415, 421, 422, 431, 503, 504}
UPLOADS = settings(max_examples=max(EXAMPLES // 3, 10), deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HEADS = settings(UPLOADS, max_examples=max(EXAMPLES // 6, 10))
_small = np.full((12, 17, 3), 0.5, np.float32)
UNSERVED = [cv2.imencode(ext, _small if ext != ".pam" else (_small * 255).astype(np.uint8))[1].tobytes()
            for ext in (".hdr", ".pfm", ".pam")]
CONTENT_TYPES = ["image/jpeg", "image/png", "application/octet-stream", "text/plain", "", "image/*; x=1"]


@pytest.fixture(scope="module")
def server(colour_model):
    # Short timeouts: a head cut short or a body shorter than its Content-Length costs the test that long.
    s = ServeProcess(str(colour_model), "--request-timeout", "0.3", "--header-timeout", "0.3",
                     "--max-pixels", "4000000")
    yield s
    s.kill()
    log = "".join(s.stderr)
    assert "Traceback" not in log, log


def _check(status: int, body: bytes) -> None:
    event(f"status {status}")
    assert status in DOCUMENTED, (status, body[:300])
    doc = json.loads(body)
    if status != 200:
        assert set(doc) == {"error", "kind"} and doc["error"] and "\n" not in doc["error"], doc
        assert "Traceback" not in doc["error"] and ".cpp" not in doc["error"], doc


@pytest.mark.slow  # 100 uploads through a real server: ~15 s at load average ~20 on 2 cores
@UPLOADS
@given(data=st.one_of(st.binary(max_size=2048), mutated_images(), st.sampled_from(UNSERVED), st.sampled_from(SEEDS)),
       content_type=st.sampled_from(CONTENT_TYPES), multipart=st.booleans(),
       top_k=st.one_of(st.none(), st.none(), st.none(), st.text(max_size=4)))
def test_any_upload_gets_a_documented_json_answer(server, data, content_type, multipart, top_k):
    params = {} if top_k is None else {"top_k": top_k}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        if multipart:
            r = c.post("/v1/classify", files={"file": ("f.bin", data, content_type or None)}, params=params)
        else:
            r = c.post("/v1/classify", content=data, params=params,
                       headers={"Content-Type": content_type} if content_type else {})
    _check(r.status_code, r.content)


def _head(data: bytes) -> bytes:
    return (b"POST /v1/classify?top_k=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n")


@HEADS
@given(body=st.sampled_from(SEEDS), edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
       cut=st.one_of(st.none(), st.integers(1, 120)))
def test_any_request_head_gets_a_documented_json_answer_or_is_closed(server, body, edits, cut):
    request = bytearray(_head(body) + body)
    for pos, value in edits:  # byte edits inside the head (its first ~110 bytes) and the image's start
        request[pos % len(request)] = value
    if cut is not None:
        request = request[:cut]  # cut inside the head: the server closes it after --header-timeout, unanswered
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    reply = b""
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(bytes(request))
        try:
            while chunk := sock.recv(65536):
                reply += chunk
                if b"\r\n\r\n" in reply and _complete(reply):
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    if not reply:
        event("closed without an answer")
        return
    head, _, payload = reply.partition(b"\r\n\r\n")
    _check(int(head.split(b" ", 2)[1]), payload)


def _complete(reply: bytes) -> bool:
    head, _, payload = reply.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(payload) >= int(value)
    return False


def test_the_server_still_answers_after_the_fuzzing(server):
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.get("/healthz").status_code == 200
        assert 'status="500"' not in c.get("/metrics").text
