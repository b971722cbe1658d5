"""Live streams on loopback for the live tests: ffmpeg serving MJPEG over HTTP and H.264 over tcp://, and a real RTSP
server (GStreamer's gst-rtsp-server, see tests/rtsp_server.py).

The RTSP server runs in the system Python (``/usr/bin/python3``, which has Debian's GObject bindings; the test venv
does not), as its own process, so a test can kill it the way a camera dies and start it again on the same
port. Tests that need it are marked ``stream`` and skipped with a reason when it is not installed
(``make stream-tools`` installs it).
"""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


# --- loopback streams served by ffmpeg ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None


class FfmpegServer:
    """An ``ffmpeg`` process listening on ``127.0.0.1:port`` (one client); :meth:`kill` ends it."""

    def __init__(self, port: int, args: list[str]) -> None:
        self.port = port
        self.proc = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_listening()

    def _wait_listening(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Probe with /proc/net/tcp rather than connecting: the server accepts exactly one client.
            if _listening(self.port):
                return
            if self.proc.poll() is not None:
                raise RuntimeError("ffmpeg exited before listening")
            time.sleep(0.05)
        raise RuntimeError("ffmpeg did not start listening")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)


class MjpegServer(FfmpegServer):
    """``ffmpeg`` serving a synthetic 60 fps MJPEG stream on ``http://127.0.0.1:PORT/x.mjpg`` (one client).

    ``pattern``: another lavfi source graph instead of ffmpeg's ``testsrc2`` test card.
    """

    def __init__(self, fps: int = 60, size: str = "320x240", seconds: int = 30, pattern: str | None = None) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/x.mjpg"
        super().__init__(port, ["-re", "-f", "lavfi", "-i", pattern or f"testsrc2=size={size}:rate={fps}",
                                "-t", str(seconds), "-q:v", "5", "-f", "mpjpeg", "-listen", "1", self.url])


class H264TcpServer(FfmpegServer):
    """``ffmpeg`` sending a raw H.264 stream of a still ``image`` to the first client of ``tcp://127.0.0.1:PORT``:
    what ``rpicam-vid -n -t 0 --inline --listen -o tcp://127.0.0.1:PORT`` serves on a Pi (libx264 here instead of
    the Pi's encoder; SPS/PPS before every key frame, as --inline asks)."""

    def __init__(self, image: Path, fps: int = 30, seconds: int = 30) -> None:
        port = free_port()
        self.url = f"tcp://127.0.0.1:{port}"
        super().__init__(port, ["-re", "-loop", "1", "-framerate", str(fps), "-i", str(image), "-t", str(seconds),
                                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt",
                                "yuv420p", "-g", str(fps), "-bsf:v", "dump_extra", "-f", "h264",
                                f"{self.url}?listen=1"])


@pytest.fixture
def h264_tcp_server():
    if not have_ffmpeg():
        pytest.skip("ffmpeg not installed (make stream-tools installs it from Debian)")
    servers: list[H264TcpServer] = []

    def start(image: Path, **kw) -> H264TcpServer:
        servers.append(H264TcpServer(image, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.kill()


def _listening(port: int) -> bool:
    hexport = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[1].endswith(":" + hexport) and parts[3] == "0A":  # 0A = LISTEN
                return True
    return False


@pytest.fixture
def mjpeg_server():
    if not have_ffmpeg():
        pytest.skip("ffmpeg not installed (make stream-tools installs it from Debian)")
    servers: list[MjpegServer] = []

    def start(**kw) -> MjpegServer:
        s = MjpegServer(**kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.kill()



# --- RTSP served by GStreamer ------------------------------------------------------------------------------
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
