"""The host a request names, parsed strictly (issue #30 item 10): one Host header holding a valid ``host[:port]`` per
RFC 3986, and an absolute-form target whose host matches it; against a real ``edgecls serve`` on loopback, and the
parser itself on many shapes.
"""

from __future__ import annotations

import json
import socket

import pytest

from edgecls.runtime.serve.authority import Authority, AuthorityError, check_request_host, parse_authority

pytest.importorskip("starlette", reason="edgecls serve needs the serve extra: pip install 'edgecls[serve]'")

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


@pytest.mark.parametrize("text, expected", [
    ("localhost", Authority("localhost", None)),
    ("LocalHost:8000", Authority("localhost", 8000)),
    ("127.0.0.1:80", Authority("127.0.0.1", 80)),
    ("[::1]", Authority("::1", None)),
    ("[::1]:8000", Authority("::1", 8000)),
    ("[0:0:0:0:0:0:0:1]:1", Authority("::1", 1)),
    ("localhost:", Authority("localhost", None)),  # RFC 3986: port = *DIGIT, empty allowed
    ("", Authority("", None)),  # an empty reg-name is valid syntax (a loopback server still refuses it: 421)
    ("ex%41mple.org", Authority("ex%41mple.org", None)),
])
def test_valid_authorities(text, expected):
    assert parse_authority(text) == expected


@pytest.mark.parametrize("text", [
    "[::1]evil.com", "[::1]@evil.com", "[::1]:80evil", "[::1", "[evil.com]", "[fe80::1%25eth0]", "[v1.x]",
    "user@localhost", "localhost@evil.com", "localhost:80:80", "localhost:http", "localhost:99999", "local host",
    "localhost/", "a\x00b", "evil.com\\@localhost", "::1", "%zz",
])
def test_invalid_authorities(text):
    with pytest.raises(AuthorityError):
        parse_authority(text)


def _check(*hosts: bytes, target: bytes = b"/healthz", version: str = "1.1", accepted=LOOPBACK):
    return check_request_host([(b"host", h) for h in hosts], target, version, accepted)


def test_request_rules():
    assert _check(b"localhost:8000") is None and _check(b"[::1]:1") is None
    assert _check(target=b"/", version="1.0") is None  # HTTP/1.0 without Host: not a browser
    assert _check(b"localhost", target=b"http://LOCALHOST:1/healthz") is None
    assert _check(b"evil.com", accepted=None) is None  # a non-loopback bind answers any valid name
    for refusal, status in [
        (_check(), 400), (_check(b"localhost", b"evil.com"), 400), (_check(b"localhost", b"localhost"), 400),
        (_check(b"[::1]evil.com"), 400), (_check(b"evil.com"), 421),
        (_check(b"localhost", target=b"http://evil.com/healthz"), 400),
        (_check(b"localhost", target=b"http://u:p@localhost/healthz"), 400),
        (_check(target=b"http://evil.com/healthz", version="1.0"), 421),
        (_check(b"evil.com", target=b"https://evil.com/", accepted=frozenset({"localhost"})), 421),
        (_check(b"localhost", target=b"http://evil.com/", accepted=None), 400),
    ]:
        assert refusal is not None and refusal.status == status, refusal


def _get(url: str, head: bytes) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head + b"Connection: close\r\n\r\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    status, _, body = reply.partition(b"\r\n\r\n")
    return int(status.split(b" ", 2)[1]), json.loads(body)


def test_a_loopback_server_refuses_every_smuggled_host(colour_model, serve_process):
    server = serve_process(str(colour_model))
    attacks = {
        b"GET /v1/model HTTP/1.1\r\nHost: [::1]evil.com\r\n": (400, "bad_host"),
        b"GET /v1/model HTTP/1.1\r\nHost: [::1]@evil.com\r\n": (400, "bad_host"),
        b"GET http://evil.com/v1/model HTTP/1.1\r\nHost: localhost\r\n": (400, "bad_host"),
        b"GET /v1/model HTTP/1.1\r\nHost: localhost\r\nHost: evil.com\r\n": (400, "bad_host"),
        b"GET /v1/model HTTP/1.1\r\nHost: evil.com\r\nHost: localhost\r\n": (400, "bad_host"),
        b"GET /v1/model HTTP/1.1\r\n": (400, "bad_host"),
        b"GET http://evil.com/v1/model HTTP/1.0\r\n": (421, "wrong_host"),
    }
    for head, (status, kind) in attacks.items():
        got, body = _get(server.url, head)
        assert (got, body["kind"]) == (status, kind), (head, got, body)
        assert "\n" not in body["error"]
    for head in (b"GET /v1/model HTTP/1.1\r\nHost: [::1]:8000\r\n", b"GET /v1/model HTTP/1.1\r\nHost: localhost\r\n",
                 b"GET http://127.0.0.1/v1/model HTTP/1.1\r\nHost: 127.0.0.1:1\r\n", b"GET /v1/model HTTP/1.0\r\n"):
        got, body = _get(server.url, head)
        assert got == 200 and "contract" in body, (head, got, body)
