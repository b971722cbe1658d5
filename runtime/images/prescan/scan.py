"""What every image reader calls before decoding: the format, the declared size, and each limit checked.

``prescan`` recognises the format from its signature (as OpenCV picks its decoder), walks that format's structure
with the bounds of :mod:`edgecls.runtime.images.prescan.limits` (numpy and ``struct`` over the bytes, never a decoder),
and checks the declared size against the pixel limit. Only the formats it can walk are read (JPEG, PNG, GIF, BMP,
WebP, TIFF, PNM): OpenCV decodes more (PAM, Sun raster, JPEG 2000, AVIF, Radiance HDR, PFM), but their size and
structure would reach the decoder unchecked. Cost: linear in the bytes it looks at, and it stops at each limit, so
a 20 MB bomb is refused in about a millisecond (benchmarks/serve_attacks.py measures it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgecls.runtime.errors import ImageDecodeError
from edgecls.runtime.images.format import FLOAT_FORMATS, SERVED_FORMATS, sniff_format
from edgecls.runtime.images.prescan.bitmaps import bmp_size, pnm_size
from edgecls.runtime.images.prescan.gif import gif_size
from edgecls.runtime.images.prescan.jpeg import JpegStructure, walk_jpeg
from edgecls.runtime.images.prescan.limits import DEFAULT_MAX_PIXELS, MAX_JPEG_SCANS, check_declared_pixels
from edgecls.runtime.images.prescan.png import png_size
from edgecls.runtime.images.prescan.tiff import check_tiff_blocks, read_tiff
from edgecls.runtime.images.prescan.webp import webp_size

READ_FORMATS = "JPEG, PNG, GIF, BMP, WebP, TIFF or PNM"
_SIZE_READERS: dict[str, Callable[[bytes, str], tuple[int, int]]] = {
    "PNG": png_size, "GIF": gif_size, "BMP": bmp_size, "WEBP": webp_size, "PPM": pnm_size,
}


@dataclass(frozen=True)
class DeclaredImage:
    """An image that passed the pre-scan: its format (Pillow's name) and its size as the header declares it."""

    format: str
    width: int
    height: int
    jpeg: JpegStructure | None = None  # the marker walk, for JPEGs (truncation, reduced decoding)


def prescan(
    data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS, max_jpeg_scans: int = MAX_JPEG_SCANS
) -> DeclaredImage:
    """Read and bound ``data``'s structure; raises an :class:`~edgecls.runtime.errors.ImageDecodeError` naming
    ``name``: ``ImageTooCostlyError`` past a structure limit, ``TooManyPixelsError`` past ``max_pixels``, the
    base class for formats that are not read and headers whose size cannot be read."""
    kind = sniff_format(data)
    if kind in FLOAT_FORMATS:
        raise ImageDecodeError(f"{name}: {kind} holds floating-point light values; only 8/16-bit images are read")
    if kind not in SERVED_FORMATS:
        what = f"{kind} images are not read" if kind else "not a decodable image"
        raise ImageDecodeError(f"{name}: {what} (only {READ_FORMATS}, whose structure is checked before decoding)")
    if kind == "JPEG":
        jpeg = walk_jpeg(data, name, max_jpeg_scans, max_pixels)
        if jpeg.size is None:
            state = "truncated" if jpeg.end is None else "broken"
            raise ImageDecodeError(f"{name}: {state} JPEG (no frame header before its image data: no size to read)")
        check_declared_pixels(jpeg.size[1], jpeg.size[0], name, max_pixels)
        return DeclaredImage(kind, jpeg.size[1], jpeg.size[0], jpeg)
    if kind == "TIFF":
        layout = read_tiff(data, name)
        check_declared_pixels(layout.width, layout.height, name, max_pixels)
        check_tiff_blocks(layout, name, max_pixels, len(data))
        return DeclaredImage(kind, layout.width, layout.height)
    width, height = _SIZE_READERS[kind](data, name)  # type: ignore[index]
    check_declared_pixels(width, height, name, max_pixels)
    return DeclaredImage(kind, width, height)
