"""A TIFF's first directory, read with numpy before libtiff sees it: size, directory entries, tiles and strips.

OpenCV decodes the first page only, through libtiff, which reads the first directory (IFD) whole and then decodes
tile by tile (or strip by strip) into one buffer the size of a tile, 4 bytes per pixel. Three things cost there
before a single pixel is worth it (limits in :mod:`edgecls.runtime.images.prescan.limits`):

- directory entries: libtiff merges every unknown tag into its field table, quadratically (4,000 cost 120 ms) and
  with one logged warning each;
- the tile size: it is declared independently of the image, so a 16x16 px TIFF may declare one 16000x16000
  deflate tile (1 MB of zeros compressed) and libtiff inflates 1 GB for it into a buffer of that size (the
  16x16 px of a 4096x4096 tile cost 67 MB and 0.6 s). Strips are bounded by the image already: libtiff
  decodes at most the image's rows of a strip whatever ``RowsPerStrip`` says (OpenCV reserves a buffer for
  ``RowsPerStrip`` rows but touches only those: 4 MB more of RSS for a 16-row image declaring 16 million);
- strips or tiles placed past the end of the file (a cut or forged file): refused here rather than read.

The chain of further pages is not walked: OpenCV does not read it for one picture (a 20,000-page TIFF decoded its
first page in 0.06 s). BigTIFF is not read (``image_format`` does not recognise it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecls.runtime.errors import ImageDecodeError, ImageTooCostlyError
from edgecls.runtime.images.prescan.limits import MAX_TIFF_ENTRIES, TIFF_BLOCK_FLOOR

_WIDTH, _LENGTH = 256, 257
_STRIP_OFFSETS, _STRIP_BYTES, _TILE_WIDTH, _TILE_LENGTH, _TILE_OFFSETS, _TILE_BYTES = 273, 279, 322, 323, 324, 325
_SHORT, _LONG = 3, 4


class _Directory:
    """The entries of one IFD as numpy columns, and typed reads of the SHORT/LONG values edgecls needs."""

    def __init__(self, data: bytes, name: str, offset: int, order: str) -> None:
        self.data, self.name, self.order = data, name, order
        count = int.from_bytes(data[offset : offset + 2], "little" if order == "<" else "big")
        if count > MAX_TIFF_ENTRIES:
            raise ImageTooCostlyError(f"{name}: TIFF directory has {count} entries (a parser work bomb?); the "
                                      f"limit is {MAX_TIFF_ENTRIES}")
        if offset + 2 + 12 * count > len(data):
            raise self.broken("its first directory runs past the end of the file")
        fields = np.dtype([("tag", order + "u2"), ("type", order + "u2"), ("count", order + "u4"), ("value", "V4")])
        self.entries = np.frombuffer(data, fields, count, offset + 2)

    def broken(self, why: str) -> ImageDecodeError:
        return ImageDecodeError(f"{self.name}: broken TIFF ({why})")

    def values(self, tag: int) -> np.ndarray | None:
        """The SHORT or LONG values of ``tag`` as uint64 (inline or at their offset), None when absent."""
        found = np.flatnonzero(self.entries["tag"] == tag)
        if found.size == 0:
            return None
        entry = self.entries[found[0]]
        kind, count = int(entry["type"]), int(entry["count"])
        if kind not in (_SHORT, _LONG) or count == 0:
            raise self.broken(f"tag {tag} is not a SHORT or LONG number")
        width = 2 if kind == _SHORT else 4
        dtype = np.dtype(self.order + ("u2" if kind == _SHORT else "u4"))
        raw = entry["value"].tobytes()
        if count * width <= 4:
            return np.frombuffer(raw, dtype, count).astype(np.uint64)
        offset = int(np.frombuffer(raw, self.order + "u4")[0])
        if offset + count * width > len(self.data):
            raise self.broken(f"the values of tag {tag} lie past the end of the file")
        return np.frombuffer(self.data, dtype, count, offset).astype(np.uint64)

    def number(self, tag: int, default: int | None = None) -> int:
        values = self.values(tag)
        if values is None:
            if default is None:
                raise self.broken(f"no tag {tag}, its size cannot be read")
            return default
        return int(values[0])


@dataclass(frozen=True)
class TiffLayout:
    """What the first directory declares: the page size and how its pixels are cut into tiles or strips."""

    width: int
    height: int
    tile: tuple[int, int] | None  # (width, height) of one tile; None for an image in strips
    data_end: int  # the furthest byte any tile or strip reaches (0 when the directory lists none)


def read_tiff(data: bytes, name: str) -> TiffLayout:
    """The first directory's layout (ImageTooCostlyError for too many entries, ImageDecodeError when broken)."""
    order = "<" if data[:2] == b"II" else ">"
    offset = int.from_bytes(data[4:8], "little" if order == "<" else "big")  # the sniffed signature is 4 bytes
    if len(data) < 8 or offset < 8 or offset + 2 > len(data):
        raise ImageDecodeError(f"{name}: broken TIFF header (its first directory is not in the file)")
    ifd = _Directory(data, name, offset, order)
    width, height = ifd.number(_WIDTH), ifd.number(_LENGTH)
    tiled = ifd.values(_TILE_WIDTH) is not None
    tile = (ifd.number(_TILE_WIDTH), ifd.number(_TILE_LENGTH)) if tiled else None
    offsets = ifd.values(_TILE_OFFSETS if tiled else _STRIP_OFFSETS)
    sizes = ifd.values(_TILE_BYTES if tiled else _STRIP_BYTES)
    used = min(offsets.size, sizes.size) if offsets is not None and sizes is not None else 0
    data_end = int((offsets[:used] + sizes[:used]).max()) if used else 0  # type: ignore[index]
    return TiffLayout(width, height, tile, data_end)


def check_tiff_blocks(layout: TiffLayout, name: str, max_pixels: int, file_bytes: int) -> None:
    """Refuse tiles larger than the image allows (strips never are: see the module doc), and tiles or strips
    lying past the end of the file."""
    width, height = layout.width, layout.height
    if layout.tile is not None:
        padded = (-(-width // 16) * 16) * (-(-height // 16) * 16)
        allowed = min(max(padded, TIFF_BLOCK_FLOOR), max_pixels)
        tw, th = layout.tile
        if tw * th > allowed:
            raise ImageTooCostlyError(
                f"{name}: TIFF tiles of {tw}x{th} pixels in a {width}x{height} image (a decompression bomb?); a tile "
                f"may cover at most {allowed} pixels"
            )
    if layout.data_end > file_bytes:
        kind = "tile" if layout.tile else "strip"
        raise ImageDecodeError(f"{name}: broken TIFF (a {kind} lies past the end of the file)")
