"""What an attacker sends ``edgecls serve``: progressive-JPEG scan bombs, idle sockets, a lowered descriptor limit.

The scan bomb is built as issue #20 describes it: a real progressive JPEG (Pillow), whose smallest scan (with
the Huffman table segment before it) is repeated before the end-of-image marker. libjpeg decodes every copy,
each one a pass over every coefficient block, so a few hundred KB cost seconds of CPU.
"""

from __future__ import annotations

import contextlib
import io
import resource
import socket
from collections.abc import Iterator

import numpy as np


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment of a well-formed JPEG; a scan's end includes its entropy data."""
    pos, out = 2, []
    while pos < len(data):
        marker = data[pos + 1]
        if marker == 0xD9:
            out.append((marker, pos, pos + 2))
            break
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # entropy data: up to the next FF that is not stuffing (00) or a restart (D0-D7)
            while True:
                end = data.index(b"\xff", end)
                if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                    end += 2
                    continue
                break
        out.append((marker, pos, end))
        pos = end
    return out


def progressive_jpeg(side: int, colour: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    """A flat ``side`` x ``side`` progressive JPEG (libjpeg's default script: 10 scans)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((side, side, 3), colour, np.uint8)).save(buf, "JPEG", progressive=True, quality=80)
    return buf.getvalue()


def scan_bomb(side: int = 6000, repeats: int = 5000) -> bytes:
    """``progressive_jpeg(side)`` with its smallest scan (and its DHT) repeated ``repeats`` times before EOI."""
    data = progressive_jpeg(side)
    segs = _segments(data)
    size, i = min((end - start, i) for i, (m, start, end) in enumerate(segs) if m == 0xDA)
    start = segs[i - 1][1] if segs[i - 1][0] == 0xC4 else segs[i][1]
    chunk = data[start : segs[i][2]]
    eoi = segs[-1][1]
    return data[:eoi] + chunk * repeats + data[eoi:]


@contextlib.contextmanager
def descriptor_limit(soft: int) -> Iterator[None]:
    """Lower this process's RLIMIT_NOFILE soft limit meanwhile: processes started inside inherit it."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


def open_idle_sockets(url: str, n: int) -> list[socket.socket]:
    """``n`` connections to ``url`` that never send a byte (each connect() completes in the kernel backlog)."""
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect((host, int(port)))
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks
