"""A real RTSP server on loopback (GStreamer's gst-rtsp-server, see tests/rtsp_server.py) for the live tests.

The server runs in the system Python (``/usr/bin/python3``, which has Debian's GObject bindings; the test venv
does not), as its own process, so a test can kill it the way a camera dies and start it again on the same
port. Tests that need it are marked ``stream`` and skipped with a reason when it is not installed
(``make stream-tools`` installs it).
"""

from __future__ import annotations

import functools
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_runtime import free_port

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")


@functools.cache
def have_rtsp_server() -> bool:
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class RtspServer:
    """``rtsp://127.0.0.1:PORT/cam``: live MJPEG over RTP of solid ``gray`` frames, ``size`` = WxH.

    :meth:`kill` ends it with SIGKILL (sockets reset, connects refused); :meth:`start` serves again on the
    same port.
    """

    def __init__(self, fps: int = 30, size: str = "96x64", gray: int = 128) -> None:
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self.fps, self.size, self.gray = fps, size, gray
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self, timeout: float = 15.0) -> None:
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--fps", str(self.fps),
               "--size", self.size, "--gray", str(self.gray)]
        deadline = time.monotonic() + timeout
        while True:  # the port of a killed server may take a moment to be free again
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            assert self.proc.stdout is not None
            if self.proc.stdout.readline().strip() == "ready":
                return
            self.proc.wait(timeout=5)
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP server did not start on 127.0.0.1:{self.port}")
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=5)


@pytest.fixture
def rtsp_server() -> Iterator:
    if not have_rtsp_server():
        pytest.skip("GStreamer's RTSP server not installed (make stream-tools installs it from Debian)")
    servers: list[RtspServer] = []

    def start(**kw) -> RtspServer:
        servers.append(RtspServer(**kw))
        return servers[-1]

    yield start
    for s in servers:
        s.kill()
