"""Sizes of the uncompressed bitmap formats: BMP's fixed binary header and PNM's short text header.

Neither has chunks to walk: a BMP's size sits at a fixed offset. A PNM header (magic, width, height and, but for
bitmaps, the largest sample value) may carry ``#`` comments between its numbers, read a character at a time by
Python parsers (Pillow's); the header must end within
:data:`~edgecls.runtime.images.prescan.limits.MAX_PNM_HEADER_BYTES`.
"""

from __future__ import annotations

import re

from edgecls.runtime.errors import ImageDecodeError, ImageTooCostlyError
from edgecls.runtime.images.prescan.limits import MAX_PNM_HEADER_BYTES

# Whitespace and comments (a comment runs to the end of its line), then a decimal number.
_NUMBER = re.compile(rb"(?:\s|#[^\r\n]*[\r\n])*(\d+)")
_FILLER = re.compile(rb"(?:\s|#[^\r\n]*)*")  # whitespace and comments only, the last one possibly cut


def bmp_size(data: bytes, name: str) -> tuple[int, int]:
    """(width, height) from the DIB header (a negative height is a top-down bitmap)."""
    header = int.from_bytes(data[14:18], "little")
    if header == 12 and len(data) >= 22:  # OS/2 BITMAPCOREHEADER: 16-bit sides
        return int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little")
    if header >= 16 and len(data) >= 26:  # BITMAPINFOHEADER and its successors: signed 32-bit sides
        width = int.from_bytes(data[18:22], "little", signed=True)
        return width, abs(int.from_bytes(data[22:26], "little", signed=True))
    raise ImageDecodeError(f"{name}: broken BMP header (its size cannot be read)")


def pnm_size(data: bytes, name: str) -> tuple[int, int]:
    """(width, height) of a PBM/PGM/PPM (``P1``-``P6``), refusing a header longer than the limit."""
    window = data[: MAX_PNM_HEADER_BYTES + 1]
    numbers, pos = [], 2
    for _ in range(2 if data[1:2] in b"14" else 3):  # bitmaps (P1, P4) have no maximum value
        found = _NUMBER.match(window, pos)
        if found is None:
            filler = _FILLER.match(window, pos)
            pos = filler.end() if filler else pos
            break
        numbers.append(int(found.group(1)))
        pos = found.end()
    if pos > MAX_PNM_HEADER_BYTES:  # still in whitespace, comments or a number where the window ends
        raise ImageTooCostlyError(f"{name}: PNM header longer than {MAX_PNM_HEADER_BYTES} bytes (comments?)")
    if len(numbers) < 2:
        raise ImageDecodeError(f"{name}: broken PNM header (its size cannot be read)")
    return numbers[0], numbers[1]
