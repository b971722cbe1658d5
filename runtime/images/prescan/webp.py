"""A WebP's canvas size and chunk count, read from its RIFF chunk headers without decoding anything.

libwebp's demuxer (OpenCV's and Pillow's WebP readers) parses every chunk of the file and keeps a record of each
before the first frame is decoded; unknown chunks are allowed anywhere. The walk reads each chunk's type and
length and stops at a limit.
"""

from __future__ import annotations

from edgecls.runtime.errors import ImageDecodeError
from edgecls.runtime.images.prescan.limits import ChunkCounter

_IMAGE_DATA = (b"VP8 ", b"VP8L", b"ANMF", b"ALPH")


def _u24(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 3], "little")


def _first_chunk_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) the first chunk declares: the VP8X canvas, or a simple file's VP8/VP8L bitstream."""
    kind, payload = data[12:16], 20
    if kind == b"VP8X" and len(data) >= payload + 10:
        return _u24(data, payload + 4) + 1, _u24(data, payload + 7) + 1
    if kind == b"VP8 " and len(data) >= payload + 10 and data[payload + 3 : payload + 6] == b"\x9d\x01\x2a":
        return (int.from_bytes(data[payload + 6 : payload + 8], "little") & 0x3FFF,
                int.from_bytes(data[payload + 8 : payload + 10], "little") & 0x3FFF)
    if kind == b"VP8L" and len(data) >= payload + 5 and data[payload] == 0x2F:
        bits = int.from_bytes(data[payload + 1 : payload + 5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def webp_size(data: bytes, name: str) -> tuple[int, int]:
    """(width, height) of the canvas, after bounding the chunks (ImageTooCostlyError past a limit)."""
    size = _first_chunk_size(data)
    if size is None or 0 in size:
        raise ImageDecodeError(f"{name}: broken WebP header (no VP8X, VP8 or VP8L chunk first: no size to read)")
    riff_end = min(len(data), 8 + int.from_bytes(data[4:8], "little"))  # libwebp ignores bytes after the RIFF
    count = ChunkCounter(name, "WebP", len(data), _IMAGE_DATA)
    pos = 12
    while pos + 8 <= riff_end:
        count.add(data[pos : pos + 4])
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + length + (length & 1)  # payloads are padded to an even length
    return size
