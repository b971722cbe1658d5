"""RTSP from a real RTSP server on loopback (GStreamer's gst-rtsp-server: tests/rtsp_server.py).

- the live capture reads real decoded frames from ``rtsp://127.0.0.1:PORT/cam``;
- ``edgecls run rtsp://...`` classifies them and prints one JSON row per frame;
- when the server dies the source reconnects with exponential back-off, and when it comes back on the
  same port the frames resume (from the new server: it serves another brightness);
- a server that stays dead ends the run with one error row after the configured retries.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from fixtures_runtime import run_edgecls, start_edgecls

from edgecls.runtime.sources.live_capture import CaptureSettings, Frame, FrameSource, quiet_backend_logs
from edgecls.runtime.sources.source_specs import SourceSpec, expand_one

pytestmark = pytest.mark.stream


def _collect(src: FrameSource, count: int, timeout: float) -> list[Frame]:
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline and not src.finished:
        got = src.take()
        if got:
            frames += got
        else:
            src.wakeup.wait(0.05)
            src.wakeup.clear()
    return frames


def _brightness(frames: list[Frame]) -> float:
    return float(np.median([f.image.mean() for f in frames]))


def _served(gray: int) -> float:
    """The brightness a client decodes for the server's ``gray``: its I420 frames are limited range (BT.601
    luma 16-235) and a JPEG decoder reads them as full range."""
    return 16 + gray * 219 / 255


def test_rtsp_url_is_a_live_stream_source(rtsp_server) -> None:
    server = rtsp_server()
    specs, problems = expand_one(server.url)
    assert problems == [] and specs == [SourceSpec("stream", server.url, server.url)] and specs[0].live


def test_live_capture_reads_real_rtsp_frames(rtsp_server) -> None:
    quiet_backend_logs()
    server = rtsp_server(size="96x64", gray=128)
    src = FrameSource(SourceSpec("stream", server.url, "rtsp-cam"), CaptureSettings(retries=0, open_timeout=5))
    try:
        frames = _collect(src.start(), 10, timeout=20)
    finally:
        src.stop()
    assert len(frames) == 10, src.error
    assert all(f.image.shape == (64, 96, 3) and f.image.dtype == np.uint8 for f in frames)
    assert abs(_brightness(frames) - _served(128)) < 6  # the server's frames, decoded
    assert [f.index for f in frames] == sorted({f.index for f in frames})


def test_edgecls_run_classifies_an_rtsp_stream(rtsp_server, runtime_models) -> None:
    server = rtsp_server()
    r = run_edgecls("run", str(runtime_models.cnn), server.url, "--json", "--max-frames", "5", timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 5 and all(row["source"] == server.url and len(row["top_k"]) == 3 for row in rows)
    assert [row["frame"] for row in rows] == sorted({row["frame"] for row in rows})
    assert all(row["age_ms"] >= 0 for row in rows)
    assert "5 result(s), 0 error(s), 0 of 1 source(s) failed" in r.stderr


def test_rtsp_server_dies_and_comes_back(rtsp_server) -> None:
    quiet_backend_logs()
    server = rtsp_server(gray=60)
    events: list[str] = []
    settings = CaptureSettings(retries=6, backoff=0.1, open_timeout=2, read_timeout=1)
    src = FrameSource(SourceSpec("stream", server.url, "door-cam"), settings, on_event=lambda _s, m: events.append(m))
    try:
        before = _collect(src.start(), 5, timeout=20)
        assert len(before) == 5, src.error
        server.kill()  # the camera reboots: RTP stops, connects are refused
        deadline = time.monotonic() + 10
        while len(events) < 2 and time.monotonic() < deadline:
            src.take()
            time.sleep(0.02)
        server.gray = 200  # the server that comes back serves other frames, so they cannot be stale ones
        server.start()
        after = _collect(src, 5, timeout=30)
    finally:
        src.stop()
    assert len(after) == 5, (events, src.error)
    assert src.error is None  # the source never gave up
    assert "door-cam: stream lost; reconnecting in 0.10 s (attempt 1/6)" in events[0]
    delays = [float(e.split("reconnecting in ")[1].split(" s")[0]) for e in events]
    assert delays[:2] == [0.1, 0.2] and src.reconnects >= 2  # exponential back-off
    assert abs(_brightness(before) - _served(60)) < 6 and abs(_brightness(after) - _served(200)) < 6
    assert after[0].index > before[-1].index  # frame numbers continue across the reconnect


def test_rtsp_server_gone_for_good_ends_the_run_with_one_error_row(rtsp_server, runtime_models) -> None:
    server = rtsp_server()
    proc = start_edgecls("run", str(runtime_models.cnn), server.url, "--json", "--retries", "2", "--backoff", "0.1",
                         "--read-timeout", "1")
    assert json.loads(proc.stdout.readline())["frame"] >= 0  # live
    server.kill()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    last = json.loads(out.splitlines()[-1])
    assert last["source"] == server.url and last["error"].endswith("after 2 reconnect attempt(s); giving up")
    assert err.count("reconnecting in") == 2 and "reconnecting in 0.10 s" in err and "reconnecting in 0.20 s" in err
    assert "Traceback" not in err
