"""Live sources under faults, with real sockets on 127.0.0.1 and real ``edgecls run`` processes.

- a camera that does not exist (``--camera 7``): one error row at once, no retry loop;
- a stream that dies and comes back: reconnect with exponential back-off, frames resume, run goes on;
- a stream that stalls mid-way (connection open, no bytes): the read timeout fires, then a reconnect;
- a server that accepts and never answers: the open timeout ends the source, bounded in time;
- SIGINT and SIGTERM to ``edgecls run``: exit 130 / 143, every output line complete, CSV published.

The MJPEG server here is a few lines of Python (so a test can make it die, stall or come back on the
same port exactly when it wants); the signal tests use ffmpeg's own server (marked ``stream``).
"""

from __future__ import annotations

import contextlib
import csv
import signal
import socket
import subprocess
import threading
import time

import cv2
import numpy as np
import pytest
from fixtures_reliability import edgecls_cmd, edgecls_env, jsonl, run_cli

from edgecls.runtime.sources.live_capture import CaptureSettings, FrameSource, quiet_backend_logs
from edgecls.runtime.sources.source_specs import SourceSpec

BOUNDARY = b"edgeclsframe"


class ControlledMjpegServer:
    """An HTTP multipart-JPEG server on 127.0.0.1 whose faults a test switches on and off.

    ``mode``: ``"serve"`` (a frame every ``1/fps`` s), ``"stall"`` (keep connections open, send nothing),
    ``"silent"`` (accept, never send even the HTTP header). ``die()`` closes every socket, the listening
    one included, so connects are refused; ``revive()`` listens again on the same port.
    """

    def __init__(self, fps: float = 30.0, mode: str = "serve") -> None:
        self.fps, self.mode = fps, mode
        ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))
        assert ok
        self.jpeg = buf.tobytes()
        self.frames_sent = 0
        self.connections = 0
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.port = 0
        self.revive()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.mjpg"

    def revive(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(8)
        s.settimeout(0.1)
        self.port = s.getsockname()[1]
        self._listener = s
        threading.Thread(target=self._accept_loop, args=(s,), daemon=True).start()

    def die(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            clients, self._clients = self._clients, []
        for c in [listener, *clients]:
            if c is not None:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()

    def close(self) -> None:
        self._stop.set()
        self.die()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stop.is_set() and self._listener is listener:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._clients.append(conn)
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.recv(4096)  # the request
            if self.mode == "silent":
                self._stop.wait(30)
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary="
                         + BOUNDARY + b"\r\nCache-Control: no-cache\r\n\r\n")
            part = (b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(self.jpeg)).encode() + b"\r\n\r\n" + self.jpeg + b"\r\n")
            while not self._stop.is_set() and conn in self._clients:
                if self.mode == "serve":
                    conn.sendall(part)
                    self.frames_sent += 1
                self._stop.wait(1.0 / self.fps)
        with contextlib.suppress(OSError):
            conn.close()


@pytest.fixture
def controlled_server():
    servers: list[ControlledMjpegServer] = []

    def start(**kw) -> ControlledMjpegServer:
        servers.append(ControlledMjpegServer(**kw))
        return servers[-1]

    quiet_backend_logs()
    yield start
    for s in servers:
        s.close()


def _collect(src: FrameSource, until, timeout: float) -> list:
    frames, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and not until(frames):
        frames += src.take()
        if src.finished:
            break
        time.sleep(0.01)
    return frames


def _watch_stream(server: ControlledMjpegServer, name: str, retries: int) -> tuple[FrameSource, list[str]]:
    """A started FrameSource on ``server`` (1 s timeouts, 0.1 s first back-off) and its event messages."""
    events: list[str] = []
    settings = CaptureSettings(retries=retries, backoff=0.1, open_timeout=1, read_timeout=1)
    src = FrameSource(SourceSpec("stream", server.url, name), settings, on_event=lambda _s, m: events.append(m))
    return src.start(), events


def test_stream_dies_and_comes_back(controlled_server) -> None:
    server = controlled_server(fps=30)
    src, events = _watch_stream(server, "door-cam", retries=6)
    try:
        before = _collect(src, lambda f: len(f) >= 5, timeout=60)
        assert len(before) >= 5, src.error
        server.die()  # connection reset and connects refused: the camera rebooted
        deadline = time.monotonic() + 60  # two back-offs (0.1 + 0.2 s); generous for a loaded box
        while len(events) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(events) >= 2, events  # both attempts failed while it was down: revived only now
        server.revive()  # back on the same port
        after = _collect(src, lambda f: len(f) >= 5, timeout=60)
    finally:
        src.stop()
    assert len(after) >= 5, (events, src.error)
    assert src.error is None  # the source never gave up
    assert src.reconnects >= 2 and server.connections >= 2
    assert "door-cam: stream lost; reconnecting in 0.10 s (attempt 1/6)" in events[0]
    delays = [float(e.split("reconnecting in ")[1].split(" s")[0]) for e in events]
    assert delays[:2] == [0.1, 0.2]  # exponential back-off
    assert after[0].index > before[-1].index  # frame numbers continue across the reconnect


def test_stream_that_stalls_mid_way_times_out_and_reconnects(controlled_server) -> None:
    server = controlled_server(fps=30)
    src, events = _watch_stream(server, "stall", retries=3)
    try:
        assert len(_collect(src, lambda f: len(f) >= 3, timeout=60)) >= 3, src.error
        server.mode = "stall"  # TCP stays open, no more bytes
        t0 = time.monotonic()
        deadline = t0 + 60  # a hang never produces the event; the 1 s read timeout does, however loaded the box
        while not events and time.monotonic() < deadline:
            src.take()
            time.sleep(0.02)
        waited = time.monotonic() - t0
        server.mode = "serve"
        resumed = _collect(src, lambda f: len(f) >= 3, timeout=60)
    finally:
        src.stop()
    assert events and "stream lost" in events[0], events
    assert waited > 0.5  # the read timeout's doing (a hang would have left ``events`` empty)
    assert len(resumed) >= 3 and server.connections >= 2


def test_server_that_never_answers_is_a_bounded_error_row(controlled_server, runtime_models) -> None:
    server = controlled_server(mode="silent")
    # Bounded: run_cli fails the test if the run has not ended after 120 s (1 s timeouts, one retry end it).
    r = run_cli("run", str(runtime_models.cnn), server.url, "--json", "--read-timeout", "1", "--retries", "1",
                "--backoff", "0.1")
    assert r.returncode == 1, r.stderr
    rows = jsonl(r.stdout)
    assert len(rows) == 1 and rows[0]["source"] == server.url and server.url in rows[0]["error"], rows
    assert "Traceback" not in r.stderr and r.stderr.count("reconnecting in") == 1


def test_missing_camera_is_one_error_row_at_once(runtime_models, odd_images) -> None:
    image = str(odd_images.good["jpeg"])
    r = run_cli("run", str(runtime_models.cnn), image, "--camera", "7", "--json")  # at once: no retry (below)
    assert r.returncode == 1
    rows = jsonl(r.stdout)
    assert rows[0]["source"] == image and "top_k" in rows[0]  # the rest of the work was done
    assert rows[1] == {"source": "camera:7", "error": "camera:7: no such camera (/dev/video7 does not exist)"}
    assert "reconnecting" not in r.stderr and "Traceback" not in r.stderr


@pytest.mark.stream
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_a_live_run_cleanly(mjpeg_server, runtime_models, tmp_path, sig, code) -> None:
    """The documented exit codes (128 + signal), every JSON line complete, the CSV published and complete."""
    server = mjpeg_server(fps=30)
    out_csv = tmp_path / "live.csv"
    proc = subprocess.Popen(
        edgecls_cmd("run", str(runtime_models.cnn), server.url, "--json", "--csv", str(out_csv)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=edgecls_env(),
    )
    first = proc.stdout.readline() + proc.stdout.readline()  # live: two rows written, whatever the load
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    rows = jsonl(first + out)
    assert len(rows) >= 2 and all("top_k" in row for row in rows)
    assert err.strip().splitlines()[-1].startswith("interrupted: ") and "Traceback" not in err
    assert len(list(csv.DictReader(out_csv.open()))) == len(rows)
    assert not list(tmp_path.glob(".*"))  # no temporary left beside the CSV
