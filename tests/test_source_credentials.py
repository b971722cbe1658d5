"""A stream URL's password never leaves the process: not in serve's replies or banner, not in run's rows or stderr.

Real processes on loopback: ``edgecls serve`` with a password-bearing RTSP URL nobody answers (the source fails,
so /readyz carries both the source and its error), and ``edgecls run --json`` on an MJPEG stream reached with
user:password@ (ffmpeg's listener ignores the credentials, so frames are classified) beside a refused one.
"""

from __future__ import annotations

import time

import pytest
from fixtures_reliability import jsonl, run_cli
from fixtures_streams import free_port

from edgecls.runtime.terminal.redact import redact

httpx = pytest.importorskip("httpx", reason="the serve tests need the dev extra (httpx)")

PASSWORD = "hunter2"


def test_redact_hides_the_userinfo_of_every_url_in_a_message():
    assert redact("rtsp://admin:hunter2@10.0.0.5:554/cam") == "rtsp://***@10.0.0.5:554/cam"
    # A raw "@" in a password, two URLs in one message, and the query of a URL without credentials.
    assert redact("cannot open rtsp://a:p@ss@cam/x (timeout); tried http://u:v@h/ too") == (
        "cannot open rtsp://***@cam/x (timeout); tried http://***@h/ too"
    )
    assert redact("photos/me@home.jpg and rtsp://cam/live") == "photos/me@home.jpg and rtsp://cam/live"


@pytest.mark.parametrize("url, shown", [
    ("rtsp://admin:se/cret@cam/", "rtsp://***@cam/"),  # issue #30: an unescaped "/" in the password
    ("rtsp://admin:a/b/c@cam:554/live?x=1", "rtsp://***@cam:554/live?x=1"),
    ("rtsp://admin:p@ss/w@rd@cam/s", "rtsp://***@cam/s"),  # "@" and "/" together
    ("rtsp://admin:pa?ss@cam/s", "rtsp://***@cam/s"),
    ("rtsp://admin:pa#ss@cam/s", "rtsp://***@cam/s"),
    ("rtsp://admin:pa%2Fss@cam/s", "rtsp://***@cam/s"),  # escaped, as RFC 3986 wants it
    ("rtsp://:onlypassword@cam", "rtsp://***@cam"),
    ("rtsp://onlyuser@cam", "rtsp://***@cam"),
    ("RTSP://Admin:Se/Cret@Cam/", "RTSP://***@Cam/"),
    ("rtmps://u:p/w@live.example:443/app/key", "rtmps://***@live.example:443/app/key"),
    ("http://u:p/w@[::1]:8080/x.mjpg", "http://***@[::1]:8080/x.mjpg"),
    ("srt://u:p/w@10.0.0.5:9000?mode=caller", "srt://***@10.0.0.5:9000?mode=caller"),
    # Over-hiding, by design: with an "@" later in the URL nothing tells a password's "/" from a path's.
    ("http://cam/a@b", "http://***@b"),
])
def test_redact_takes_the_userinfo_to_the_last_at_sign_of_the_url(url, shown):
    for text, expected in ((url, shown), (f"cannot open {url}: timeout (user@example.org)",
                                          f"cannot open {shown}: timeout (user@example.org)"),
                           (f"'{url}'", f"'{shown}'")):
        got = redact(text)
        assert got == expected, (text, got)
        assert url.split("://", 1)[1].rsplit("@", 1)[0] not in got  # no part of the userinfo as typed


@pytest.mark.slow  # the refused source gives up after serve's reconnect attempts (~15 s)
def test_serve_readyz_and_banner_hide_the_stream_password(colour_model, serve_process):
    port = free_port()  # nothing listens: every connection is refused
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{port}/cam"
    server = serve_process(str(colour_model), "--source", url, "--token", "T")
    shown = f"rtsp://***@127.0.0.1:{port}/cam"
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=server.url, timeout=10) as anonymous:
        while True:
            reply = anonymous.get("/readyz")  # no token: anyone on the network may ask
            assert PASSWORD not in reply.text, reply.text
            live = reply.json()["live"]
            assert live["source"] == shown
            if live["error"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert live["error"] and live["error"].startswith(shown), live
    with server.client(headers={"Authorization": "Bearer T"}) as client:
        model = client.get("/v1/model")
        assert model.status_code == 200 and PASSWORD not in model.text
        assert model.json()["live"]["source"] == shown
        latest = client.get("/v1/latest")  # 503 no_result_yet: its message names the source
        assert PASSWORD not in latest.text and shown in latest.text
    banner = "".join(server.stderr)
    assert f"live source {shown}" in banner and PASSWORD not in banner


def test_run_json_rows_and_stderr_hide_stream_passwords(colour_model, colour_stream):
    live = colour_stream.url.replace("http://", f"http://viewer:{PASSWORD}@")
    refused = f"rtsp://admin:{PASSWORD}@127.0.0.1:{free_port()}/cam"
    proc = run_cli("run", str(colour_model), live, refused, "--json", "--max-frames", "3", "--retries", "0",
                   timeout=120)
    everything = proc.stdout + proc.stderr
    assert PASSWORD not in everything, everything
    rows = jsonl(proc.stdout)
    shown_live = colour_stream.url.replace("http://", "http://***@")
    results = [r for r in rows if "top_k" in r]
    errors = [r for r in rows if "error" in r]
    assert len(results) == 3 and {r["source"] for r in results} == {shown_live}, rows
    assert len(errors) == 1 and errors[0]["source"] == redact(refused), rows
    assert errors[0]["error"].startswith(redact(refused)), errors
