"""Attacks on ``edgecls serve`` (issue #20), each against a real server process on 127.0.0.1.

Scan bombs refused before decoding while good uploads are served; a decode that outlives its request does not
hold the decode thread; SIGTERM past --drain-timeout answers a JSON 503 and exits in time; idle sockets under a
300-descriptor limit cannot keep a new request out; header timeout and header size; the Host rule against DNS
rebinding; formats whose size cannot be checked before decoding get 415 without library internals.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from fixtures_attacks import descriptor_limit, open_idle_sockets, scan_bomb

httpx = pytest.importorskip("httpx", reason="the serve tests need the dev extra (httpx)")
pytest.importorskip("starlette", reason="edgecls serve needs the serve extra: pip install 'edgecls[serve]'")

JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return scan_bomb(6000, 5000)  # 440 KB; 3.6 s of decoding here when admitted


def photo(bgr: tuple[int, int, int] = (0, 0, 200)) -> bytes:
    return cv2.imencode(".jpg", np.full((480, 640, 3), bgr, np.uint8))[1].tobytes()


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def metric(client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_scan_bombs_are_refused_at_once_while_good_uploads_get_200(colour_model, serve_process, bomb):
    server = serve_process(str(colour_model), "--decode-threads", "1")

    def post(data: bytes) -> tuple[int, dict, float]:
        with server.client() as c:
            t0 = time.monotonic()
            r = c.post("/v1/classify", content=data, headers=JPEG)
            return r.status_code, r.json(), time.monotonic() - t0

    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(post, [bomb, photo(), bomb, photo(), photo(), bomb]))
    for status, body, seconds in (replies[0], replies[2], replies[5]):
        assert status == 413 and body["kind"] == "too_costly", body
        assert "more than 100 scans" in body["error"] and seconds < 1.0, (body, seconds)
    for status, body, _ in (replies[1], replies[3], replies[4]):
        assert status == 200 and body["top_k"][0]["label"] == "red", body


def test_a_decode_past_its_timeout_does_not_hold_the_decode_thread(colour_model, serve_process, bomb):
    # The bomb is let through (scan limit raised) so that its decode outlives its request: one decode thread.
    server = serve_process(str(colour_model), "--decode-threads", "1", "--max-jpeg-scans", "1000000",
                           "--request-timeout", "1")
    with server.client() as c:
        slow = c.post("/v1/classify", content=bomb, headers=JPEG)
        t0 = time.monotonic()
        good = c.post("/v1/classify", content=photo(), headers=JPEG)
        good_s = time.monotonic() - t0
        abandoned = metric(c, "edgecls_decodes_abandoned_total")
    assert slow.status_code == 504 and slow.json()["kind"] == "timeout", slow.text
    # The bomb still decodes for ~2.5 s on its own thread; a fresh thread serves this one meanwhile.
    assert good.status_code == 200 and good_s < 0.9, (good.text, good_s)
    assert abandoned == 1


def test_sigterm_past_the_drain_timeout_answers_503_and_exits_in_time(colour_model, serve_process, bomb):
    server = serve_process(str(colour_model), "--decode-threads", "1", "--max-jpeg-scans", "1000000",
                           "--drain-timeout", "1")
    reply: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: reply.append(
        httpx.post(server.url + "/v1/classify", content=bomb, headers=JPEG, timeout=30)))
    sender.start()
    with server.client() as c:  # in flight for certain: the server counts it (and decodes it for ~3.6 s)
        deadline = time.monotonic() + 10
        while metric(c, "edgecls_classify_in_flight") < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    exit_s = time.monotonic() - t0
    sender.join(10)
    log = "".join(server.stderr)
    assert reply and reply[0].status_code == 503, (reply, log)
    assert reply[0].json()["kind"] == "shutting_down" and "--drain-timeout" in reply[0].json()["error"]
    assert exit_s < 1 + 1.0, (exit_s, log)
    assert "Traceback" not in log and "1 request(s) still in flight" in log and "answered 503" in log, log


def test_idle_sockets_under_a_300_descriptor_limit_cannot_keep_a_new_request_out(colour_model, serve_process):
    with descriptor_limit(300):  # the server inherits it
        # The connection cap acts here: not the header timeout, nor the per-client cap (every socket is 127.0.0.1).
        server = serve_process(str(colour_model), "--header-timeout", "60", "--max-connections-per-client", "1000")
    idle = open_idle_sockets(server.url, 400)
    try:
        assert len(idle) >= 300
        t0 = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=10) as c:
            r = c.post("/v1/classify", content=photo(), headers=JPEG)
        assert r.status_code == 200 and time.monotonic() - t0 < 10, r.text
        assert "up to 236 connections" in "".join(server.stderr)  # 300 descriptors - 64 kept for the rest
        with httpx.Client(base_url=server.url, timeout=10) as c:
            evicted = metric(c, 'edgecls_connections_closed_total{reason="evicted"}')
        assert evicted >= len(idle) - 236, evicted  # each connection past the cap closed the longest-idle one
    finally:
        for s in idle:
            s.close()


def _closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closes ``sock`` (recv returns b"" or resets), failing after ``seconds``."""
    t0 = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - t0


def test_keep_alive_header_timeout_and_size_close_idle_trickling_and_oversized_requests(colour_model, serve_process):
    server = serve_process(str(colour_model), "--header-timeout", "1", "--keep-alive", "0.5")
    address = host_port(server.url)
    with socket.create_connection(address) as kept:  # answered, then idle on keep-alive: closed after 0.5 s
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        kept.settimeout(5)
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        assert _closed_within(kept, 5) < 0.9
    with socket.create_connection(address) as idle:
        assert 0.5 < _closed_within(idle, 5) < 3
    with socket.create_connection(address) as trickle:  # slowloris: a byte every 0.2 s, never the whole head
        t0 = time.monotonic()
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                trickle.sendall(bytes([byte]))
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert time.monotonic() - t0 + _closed_within(trickle, 5) < 3
    with socket.create_connection(address) as big:
        big.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Big: " + b"a" * 200_000)
        reply = b""
        big.settimeout(5)
        with contextlib.suppress(ConnectionResetError):  # the server closes once it has answered
            while chunk := big.recv(65536):
                reply += chunk
    head, body = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 431") and json.loads(body)["kind"] == "headers_too_large"
    # A whole request read in one chunk, its body over the header limit: the body is not header bytes. The
    # server is stopped while the request is sent, so the kernel holds all of it for the server's first read.
    noise = np.random.default_rng(0).integers(0, 256, (250, 330, 3), dtype=np.uint8)
    picture = cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    assert 64 * 1024 < len(picture) < 120 * 1024  # over the limit, within one read and the socket's buffer
    request = (b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nConnection: close\r\n"
               b"Content-Length: " + str(len(picture)).encode() + b"\r\n\r\n" + picture)
    server.proc.send_signal(signal.SIGSTOP)
    try:
        one_read = socket.create_connection(address)
        one_read.sendall(request)
    finally:
        server.proc.send_signal(signal.SIGCONT)
    with one_read:
        one_read.settimeout(10)
        reply = b""
        while chunk := one_read.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]
    with server.client() as c:  # the server is unharmed
        assert c.get("/healthz").status_code == 200


def test_a_loopback_server_answers_only_loopback_host_names(colour_model, serve_process):
    server = serve_process(str(colour_model), "--allow-host", "proxy.example")
    _, port = host_port(server.url)
    with server.client() as c:
        rebound = c.get("/v1/model", headers={"Host": f"attacker.example:{port}"})
        page = c.get("/", headers={"Host": "attacker.example"})
        ok = [c.get("/v1/model", headers={"Host": h}).status_code
              for h in (f"localhost:{port}", f"127.0.0.1:{port}", "LOCALHOST", f"proxy.example:{port}")]
    for r in (rebound, page):
        assert r.status_code == 421 and r.json()["kind"] == "wrong_host", r.text
        assert "attacker.example" in r.json()["error"]
    assert ok == [200, 200, 200, 200]


def _float_and_pam_images() -> dict[str, bytes]:
    """Small valid HDR/PFM/PAM files (OpenCV decodes them) and headers declaring 10000x10000 pixels."""
    small = np.full((20, 30, 3), 0.5, np.float32)
    return {
        "small.hdr": cv2.imencode(".hdr", small)[1].tobytes(),
        "small.pfm": cv2.imencode(".pfm", small)[1].tobytes(),
        "small.pam": cv2.imencode(".pam", (small * 255).astype(np.uint8))[1].tobytes(),
        "huge.hdr": b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 10000 +X 10000\n" + b"\x02\x02\x27\x10" * 64,
        "huge.pfm": b"PF\n10000 10000\n-1.0\n" + b"\0" * 256,
        "huge.pam": b"P7\nWIDTH 10000\nHEIGHT 10000\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + b"\0" * 256,
    }


def test_formats_that_cannot_be_sized_before_decoding_get_415_without_internals(colour_model, serve_process):
    from PIL import Image

    server = serve_process(str(colour_model), "--max-pixels", "1000000")
    tga, gif = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (30, 20), (200, 0, 0)).save(tga, "TGA")
    Image.new("RGB", (30, 20), (0, 0, 200)).save(gif, "GIF")
    with server.client() as c:
        replies = {name: c.post("/v1/classify", content=data, headers={"Content-Type": "application/octet-stream"},
                                params={"name": name})
                   for name, data in {**_float_and_pam_images(), "red.tga": tga.getvalue()}.items()}
        good_gif = c.post("/v1/classify", content=gif.getvalue(), headers={"Content-Type": "image/gif"})
    for name, r in replies.items():
        assert r.status_code == 415, (name, r.status_code, r.text)
        body = r.json()
        assert body["kind"] == "unsupported_format" and body["error"].startswith(name), body
        assert not any(s in r.text for s in ("OpenCV", ".cpp", "/io/", "Assertion")), r.text
    assert good_gif.status_code == 200 and good_gif.json()["top_k"][0]["label"] == "blue", good_gif.text
