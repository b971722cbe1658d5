"""One walk over a JPEG's marker stream, as libjpeg reads it, bounded before libjpeg (or anything else) does it.

What it finds: the frame size (for the pixel limit and reduced decoding), the first start-of-scan (where the image
data begins) and whether the end-of-image marker follows it (a cut file). What it bounds, refusing past each limit
(:mod:`edgecls.runtime.images.prescan.limits`):

- marker segments: libjpeg keeps a copy of every APP1 segment (OpenCV asks for them, for the EXIF orientation) and
  walks every other one; 4.75 million empty APP1 segments (19 MB) cost 695 MB;
- stray bytes: ``FF`` fill bytes before a marker and junk where a marker should be, which libjpeg skips with a
  warning; header parsers written in Python (Pillow's) read them one at a time;
- scans: a progressive JPEG may repeat its scans any number of times and libjpeg walks every coefficient block of
  the image once per scan, however few bytes the scan has. A 6000x6000 JPEG whose smallest scan is repeated 5,000
  times is 440 KB and took 3.6 s to decode (0.7 ms per scan). libjpeg-turbo has a scan limit for this
  (``djpeg -maxscans``, TurboJPEG's ``TJPARAM_SCANLIMIT``); OpenCV does not expose it, so it is applied here.

The walk follows libjpeg: header segments by their lengths, each scan's entropy-coded data up to the next real
marker (in entropy data every ``FF`` byte is followed by ``00`` (stuffing) or a restart marker ``D0``-``D7``),
junk skipped up to the next ``FF``, and nothing after the end-of-image marker (phone "motion photos" append an MP4
there). Before, one junk byte between two header segments made the header walk give up and skipped the scan limit.
Every loop stops at its limit, so a 20 MB bomb costs the walk no more than a small file; entropy data is searched
by one compiled pattern (C speed, about 1.5 ms per MB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgecls.runtime.errors import ImageTooCostlyError
from edgecls.runtime.images.prescan.limits import (
    MAX_JPEG_SEGMENTS,
    MAX_JPEG_STRAY_BYTES,
    PIXELS_PER_SCAN,
    check_declared_pixels,
)

_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})  # TEM, SOI, restart markers: no length field
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame (not DHT, JPG, DAC)
_FILL = re.compile(rb"\xff+")
# In entropy-coded data: FF followed by anything but stuffing (00) or a restart marker: a marker, or fill before one.
_ENTROPY_EXIT = re.compile(rb"\xff[^\x00\xd0-\xd7]")


@dataclass(frozen=True)
class JpegStructure:
    """What one walk over a JPEG found (the counts stop at their limits: past them the walk refuses)."""

    size: tuple[int, int] | None  # (height, width) from the first start-of-frame, as stored (before EXIF rotation)
    first_scan: int | None  # offset of the first start-of-scan marker: the image data begins there
    end: int | None  # offset of the end-of-image marker, None when the walk ran out of bytes before it
    scans: int
    segments: int
    stray_bytes: int

    @property
    def truncated(self) -> bool:
        """No image data, or no end-of-image marker after it: the file was cut short."""
        return self.first_scan is None or self.end is None


def scan_limit(size: tuple[int, int] | None, max_scans: int) -> int:
    """Scans a frame of ``size`` may have: ``max_scans``, fewer for frames over :data:`PIXELS_PER_SCAN` pixels
    (never fewer than 1: a baseline image has one scan per component)."""
    pixels = size[0] * size[1] if size else 0
    return max(1, min(max_scans, max_scans * PIXELS_PER_SCAN // pixels)) if pixels else max_scans


def segment_limit(max_scans: int) -> int:
    """Marker segments a JPEG may have: :data:`MAX_JPEG_SEGMENTS` besides its scans, each of which may bring its
    scan header and a table segment (so raising ``--max-jpeg-scans`` raises this too)."""
    return MAX_JPEG_SEGMENTS + 2 * max_scans


class _Walk:
    """The walk's state: a position and the counts, each refused as soon as it passes its limit."""

    def __init__(self, data: bytes, name: str, max_scans: int, max_pixels: int) -> None:
        self.data, self.name, self.max_scans, self.max_pixels = data, name, max_scans, max_pixels
        self.size: tuple[int, int] | None = None
        self.first_scan: int | None = None
        self.scans = self.segments = self.stray = 0
        self.max_segments = segment_limit(max_scans)

    def refuse(self, what: str) -> ImageTooCostlyError:
        return ImageTooCostlyError(f"{self.name}: JPEG {what} (a parser work bomb?)")

    def add_stray(self, count: int) -> None:
        self.stray += count
        if self.stray > MAX_JPEG_STRAY_BYTES:
            raise self.refuse(f"has more than {MAX_JPEG_STRAY_BYTES} fill or junk bytes outside its segments")

    def fill_run_end(self, pos: int) -> int:
        """End of the run of FF bytes at ``pos``, looked at no further than the stray-byte budget allows."""
        stop = min(len(self.data), pos + MAX_JPEG_STRAY_BYTES - self.stray + 2)
        found = _FILL.match(self.data, pos, stop)
        return found.end() if found else pos

    def next_marker(self, pos: int) -> int | None:
        """The offset of the FF right before the next marker byte, from ``pos`` where a marker is expected."""
        data, n = self.data, len(self.data)
        while pos < n:
            if data[pos] != 0xFF:  # junk: libjpeg skips to the next FF
                budget = MAX_JPEG_STRAY_BYTES - self.stray
                ff = data.find(b"\xff", pos, pos + budget + 1)
                if ff < 0:
                    self.add_stray(min(budget + 1, n - pos))
                    return None
                self.add_stray(ff - pos)
                pos = ff
            run_end = self.fill_run_end(pos)
            self.add_stray(run_end - pos - 1)
            if run_end >= n:
                return None
            if data[run_end] != 0x00:
                return run_end - 1
            self.add_stray(2)  # FF 00 outside entropy data is not a marker: libjpeg discards both bytes
            pos = run_end + 1
        return None

    def after_entropy_data(self, pos: int) -> int | None:
        """The offset of the FF right before the first marker after the entropy-coded data starting at ``pos``."""
        data, n = self.data, len(self.data)
        while True:
            found = _ENTROPY_EXIT.search(data, pos)
            if found is None:
                return None
            ff = found.start()
            if data[ff + 1] != 0xFF:
                return ff
            run_end = self.fill_run_end(ff)  # fill bytes: before a marker, a stuffed FF or a restart marker
            self.add_stray(run_end - ff - 1)
            if run_end >= n:
                return None
            following = data[run_end]
            if following != 0x00 and not 0xD0 <= following <= 0xD7:
                return run_end - 1
            pos = run_end + 1

    def segment(self, pos: int, marker: int) -> int | None:
        """Account for the segment whose marker is at ``pos``; the offset where a marker is expected next."""
        data, n = self.data, len(self.data)
        self.segments += 1
        if self.segments > self.max_segments:
            raise self.refuse(f"has more than {self.max_segments} marker segments")
        if marker in _STANDALONE:
            return pos + 2
        if pos + 4 > n:
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None  # libjpeg refuses a segment shorter than its length field: leave the verdict to it
        end = pos + 2 + length
        if marker in _SOF and self.size is None and pos + 9 <= n:
            self.size = int.from_bytes(data[pos + 5 : pos + 7], "big"), int.from_bytes(data[pos + 7 : pos + 9], "big")
            check_declared_pixels(self.size[1], self.size[0], self.name, self.max_pixels)  # before the image data
        if marker != _SOS:
            return end
        self.scans += 1
        self.first_scan = pos if self.first_scan is None else self.first_scan
        limit = scan_limit(self.size, self.max_scans)
        if self.scans > limit:
            raise self._too_many_scans(limit)
        return self.after_entropy_data(end)

    def _too_many_scans(self, limit: int) -> ImageTooCostlyError:
        if limit == self.max_scans or self.size is None:
            return ImageTooCostlyError(f"{self.name}: JPEG has more than {self.max_scans} scans (a progressive-JPEG "
                                       f"scan bomb?); the limit is {self.max_scans}")
        h, w = self.size
        return ImageTooCostlyError(
            f"{self.name}: progressive JPEG of {w}x{h} pixels with more than {limit} scans exceeds the decode "
            f"budget of {self.max_scans * PIXELS_PER_SCAN} scan-pixels"
        )

    def run(self) -> JpegStructure:
        pos: int | None = 2  # after SOI
        while pos is not None:
            pos = self.next_marker(pos)
            if pos is None:
                break
            marker = self.data[pos + 1]
            if marker == _EOI:
                return self.result(pos)
            pos = self.segment(pos, marker)
        return self.result(None)

    def result(self, end: int | None) -> JpegStructure:
        return JpegStructure(self.size, self.first_scan, end, self.scans, self.segments, self.stray)


def walk_jpeg(data: bytes, name: str, max_scans: int, max_pixels: int) -> JpegStructure:
    """Walk the JPEG ``data`` (it starts with SOI) from its header to its end-of-image marker.

    Raises :class:`~edgecls.runtime.errors.ImageTooCostlyError` naming ``name`` past any limit and
    :class:`~edgecls.runtime.errors.TooManyPixelsError` at a frame header over ``max_pixels``; a structure
    libjpeg would refuse on its own (a bad segment length, a cut file) ends the walk early, without a verdict.
    """
    return _Walk(data, name, max_scans, max_pixels).run()
