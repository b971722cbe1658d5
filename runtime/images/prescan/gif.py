"""A GIF's screen size and the blocks before its first image, read without decoding anything.

Before the first image's pixels a GIF may hold any number of extension blocks (comments, application data, XMP),
each a chain of sub-blocks of at most 255 bytes. Header parsers written in Python (Pillow's) read them one at a
time: 6 million empty comment blocks (19 MB) are seconds of CPU. OpenCV decodes the first frame onto a canvas of
the logical screen's size (every frame must fit inside it), so that size is the one the pixel limit checks. The
frames after the first are skipped by OpenCV in C at a few nanoseconds per sub-block and are not walked here.
"""

from __future__ import annotations

from edgecls.runtime.errors import ImageDecodeError, ImageTooCostlyError
from edgecls.runtime.images.prescan.limits import MAX_GIF_BLOCKS

_EXTENSION = 0x21


def gif_size(data: bytes, name: str) -> tuple[int, int]:
    """(width, height) of the logical screen, after bounding the blocks before the first image."""
    n = len(data)
    if n < 13:
        raise ImageDecodeError(f"{name}: broken GIF header (its size cannot be read)")
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    flags = data[10]
    pos = 13 + (3 << ((flags & 0x07) + 1) if flags & 0x80 else 0)  # after the global colour table
    blocks = 0  # extensions and their data sub-blocks
    while pos < n and data[pos] == _EXTENSION:
        pos += 2  # introducer, label
        while True:  # sub-blocks: a length byte, then that many bytes; a zero length ends the extension
            blocks += 1
            if blocks > MAX_GIF_BLOCKS:
                raise ImageTooCostlyError(
                    f"{name}: GIF has more than {MAX_GIF_BLOCKS} blocks before its first image (a parser work bomb?)"
                )
            if pos >= n or data[pos] == 0:
                break
            pos += 1 + data[pos]
        pos += 1
    return width, height
