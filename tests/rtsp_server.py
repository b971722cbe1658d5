"""A real RTSP server on loopback for the live-source tests: GStreamer's RTSP server (gst-rtsp-server).

ffmpeg can publish to an RTSP server but not be one for a client that pulls (its RTSP muxer only connects
out), so the tests use Debian's ``gir1.2-gst-rtsp-server-1.0`` through the system Python's GObject bindings
(``python3-gi``); ``make stream-tools`` installs both. Run by tests/fixtures_streams.py as::

    /usr/bin/python3 tests/rtsp_server.py --port PORT [--path /cam] [--fps 30] [--size 96x64] [--gray 128]

It serves ``rtsp://127.0.0.1:PORT/cam``: a live MJPEG-over-RTP stream (RFC 2435 payload) of solid frames of
brightness ``gray``, so a test can tell a decoded frame from garbage. Prints ``ready`` once it listens;
SIGTERM/SIGINT stop it, SIGKILL is how a test makes the camera "die".
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/cam")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--size", default="96x64", help="WxH")
    ap.add_argument("--gray", type=int, default=128, help="brightness of every pixel, 0-255")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    argb = 0xFF000000 | (args.gray << 16) | (args.gray << 8) | args.gray
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=solid-color foreground-color={argb} "
        f"! video/x-raw,format=I420,width={width},height={height},framerate={args.fps}/1 "
        "! jpegenc quality=90 ! rtpjpegpay name=pay0 pt=26 )"
    )
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
