"""What an attacker sends ``edgecls serve`` (and drops in a folder ``run`` reads): progressive-JPEG scan bombs,
parse-cost bombs (empty chunks, segments, fill bytes, oversized TIFF tiles), idle sockets, a lowered descriptor limit.

The scan bomb is built as issue #20 describes it: a real progressive JPEG (Pillow), whose smallest scan (with
the Huffman table segment before it) is repeated before the end-of-image marker. libjpeg decodes every copy,
each one a pass over every coefficient block, so a few hundred KB cost seconds of CPU.
"""

from __future__ import annotations

import contextlib
import io
import resource
import socket
import struct
import zlib
from collections.abc import Callable, Iterator

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


# --- Parse-cost bombs (issue #30 items 4-6): structure a decoder walks before any limit applied ----------------


def _pil_bytes(fmt: str, size: tuple[int, int] = (8, 8), **kw) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_chunks(count: int, before_image: bool = True) -> bytes:
    """A 1x1 PNG with ``count`` empty private chunks before its IDAT (or after it): 12 bytes each."""
    png = _pil_bytes("PNG", (1, 1))
    head, end = 8 + 25, png.rindex(b"IEND") - 4  # after IHDR; before IEND
    filler = png_chunk(b"prIv") * count
    if before_image:
        return png[:head] + filler + png[head:]
    return png[:end] + filler + png[end:]


def png_of_zeros(width: int, height: int) -> bytes:
    """A complete, decodable black RGB PNG of ``width`` x ``height``: 20000 x 20000 is 1.17 MB and decodes to 1.2 GB."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = _zeros_deflated((1 + 3 * width) * height)  # each row: filter type 0, then its zero samples
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND")


def jpeg_with_segments(count: int, marker: int = 0xE1) -> bytes:
    """A small baseline JPEG with ``count`` empty segments (APP1 by default, 0xFE for COM) after SOI."""
    jpg = _pil_bytes("JPEG")
    return jpg[:2] + bytes((0xFF, marker, 0, 2)) * count + jpg[2:]


def jpeg_with_fill(count: int) -> bytes:
    """A small baseline JPEG with ``count`` FF fill bytes before its first marker after SOI."""
    jpg = _pil_bytes("JPEG")
    return jpg[:2] + b"\xff" * count + jpg[2:]


def gif_with_comments(count: int) -> bytes:
    """An 8x8 GIF with ``count`` empty comment extensions before its image."""
    gif = _pil_bytes("GIF")
    flags = gif[10]
    start = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    return gif[:start] + b"\x21\xfe\x00" * count + gif[start:]


def webp_with_chunks(count: int) -> bytes:
    """An 8x8 extended WebP (VP8X) with ``count`` empty unknown chunks before its image chunk."""
    simple = _pil_bytes("WEBP")
    image = simple[12:]
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (7).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + b"prIv\0\0\0\0" * count + image
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _tiff(tags: list[tuple[int, int, int, int | bytes]], payload: bytes) -> bytes:
    """A little-endian TIFF: header, one IFD of ``(tag, type, count, value)`` sorted by tag, then ``payload``.

    A ``bytes`` value goes after the IFD (its offset is written); an int ``value`` of -1 is the payload's offset.
    """
    tags = sorted(tags)
    ifd_end = 8 + 2 + 12 * len(tags) + 4
    extra, out = b"", bytearray(b"II*\x00" + struct.pack("<IH", 8, len(tags)))
    payload_at = ifd_end + sum(len(v) for *_, v in tags if isinstance(v, bytes))
    for tag, kind, count, value in tags:
        if isinstance(value, bytes):
            out += struct.pack("<HHII", tag, kind, count, ifd_end + len(extra))
            extra += value
        elif kind == 3:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, payload_at if value == -1 else value)
    return bytes(out) + struct.pack("<I", 0) + extra + payload


def tiff_with_entries(count: int) -> bytes:
    """An 8x8 grey TIFF whose first directory has ``count`` private tags beside the ones it needs."""
    pixels = bytes(64)
    tags = [(256, 3, 1, 8), (257, 3, 1, 8), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, -1),
            (277, 3, 1, 1), (278, 3, 1, 8), (279, 4, 1, len(pixels))]
    tags += [(40000 + i, 3, 1, 0) for i in range(count)]
    return _tiff(tags, pixels)


def _zeros_deflated(size: int) -> bytes:
    """zlib of ``size`` zero bytes, compressed 4 MB at a time (1 GB deflates to about 1 MB)."""
    co, block = zlib.compressobj(9), bytes(1 << 22)
    parts = [co.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, co.compress(bytes(size % len(block))), co.flush()])


def tiff_tile_bomb(tile: int = 16000, side: int = 16) -> bytes:
    """A ``side`` x ``side`` RGBA TIFF with one deflate tile declared ``tile`` x ``tile`` (zeros): libtiff inflates and
    OpenCV allocates the whole tile, 4 bytes per pixel (16000: 1 GB), for 16x16 pixels."""
    data = _zeros_deflated(tile * tile * 4)
    tags = [(256, 3, 1, side), (257, 3, 1, side), (258, 3, 4, struct.pack("<4H", 8, 8, 8, 8)), (259, 3, 1, 8),
            (262, 3, 1, 2), (277, 3, 1, 4), (284, 3, 1, 1), (322, 4, 1, tile), (323, 4, 1, tile), (324, 4, 1, -1),
            (325, 4, 1, len(data)), (338, 3, 1, 2)]
    return _tiff(tags, data)


def tiff_with_strip_rows(rows: int, side: int = 16) -> bytes:
    """A ``side`` x ``side`` grey deflate TIFF whose RowsPerStrip says ``rows`` (legal above the image's height)."""
    pixels = zlib.compress(bytes(side * side))
    tags = [(256, 3, 1, side), (257, 3, 1, side), (258, 3, 1, 8), (259, 3, 1, 8), (262, 3, 1, 1), (273, 4, 1, -1),
            (277, 3, 1, 1), (278, 4, 1, rows), (279, 4, 1, len(pixels))]
    return _tiff(tags, pixels)


def pnm_with_comment(length: int) -> bytes:
    """An 8x8 PPM whose header carries a ``length``-byte comment."""
    return b"P6\n#" + b"x" * length + b"\n8 8\n255\n" + bytes(8 * 8 * 3)


#: One small file per structure limit of the pre-scan, twice over its default (runtime/images/prescan/limits.py): 1,000
#: chunks before the image data, 10,000 chunks, 1,000 + 2 x 100 JPEG segments, 4,096 stray bytes, 10,000 GIF blocks,
#: 1,000 TIFF entries, a 4,096-byte PNM header; and a TIFF tile over 2048x2048 in a 16x16 image. Builders, so that
#: collecting the tests builds nothing; numbers, not imports: the same files must reach a build without the pre-scan
#: (where they all decode).
PARSE_BOMBS: dict[str, Callable[[], bytes]] = {
    "chunks.png": lambda: png_with_chunks(2_000),
    "chunks_after_image.png": lambda: png_with_chunks(20_000, before_image=False),
    "app1.jpg": lambda: jpeg_with_segments(2_400),
    "comments.jpg": lambda: jpeg_with_segments(2_400, 0xFE),
    "fill.jpg": lambda: jpeg_with_fill(8_192),
    "comments.gif": lambda: gif_with_comments(20_000),
    "chunks.webp": lambda: webp_with_chunks(2_000),
    "entries.tif": lambda: tiff_with_entries(2_000),
    "comment.ppm": lambda: pnm_with_comment(8_192),
    "tile.tif": lambda: tiff_tile_bomb(4096),
}
