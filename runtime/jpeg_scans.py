"""How much work a JPEG asks of libjpeg, read from its marker stream before any pixel is decoded.

Why: a progressive JPEG may hold any number of scans, and libjpeg walks every coefficient block of the image
once per scan, however few bytes the scan has. A 6000x6000 progressive JPEG whose smallest AC scan (46 bytes
with its Huffman table) is repeated 5,000 times before the end marker is 440 KB and took 3.6 s to decode here
(0.7 ms per scan); at a 20 MB upload limit that is minutes of CPU per file. libjpeg-turbo offers a scan limit
for this (``djpeg -maxscans``, TurboJPEG's ``TJPARAM_SCANLIMIT``); OpenCV does not expose it, so we count the
scans ourselves and refuse past a limit, like it would, before handing the bytes to OpenCV.

The walk follows what libjpeg reads: header segments by their lengths, each scan's entropy-coded data up to
the next real marker (in entropy data every ``FF`` byte is followed by ``00`` (stuffing) or a restart marker
``D0``-``D7``), bytes that are not a marker skipped up to the next ``FF`` (libjpeg warns and does the same),
and everything after the end-of-image marker ignored (phone "motion photos" append an MP4 there, whose bytes
must not count as scans).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgecls.runtime.errors import ImageDecodeError

MAX_JPEG_SCANS = 100  # libjpeg's default progression has 10 scans (6 for grey); mozjpeg's searched ones ~20
# Scans x pixels, the work of a progressive decode (every scan visits every block), may not exceed max_scans
# scans of this many pixels: a 100 Mpx JPEG gets 40 of the 100 scans a 40 Mpx one may have.
PIXELS_PER_SCAN = 40_000_000

_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and restart markers: no length field
# A real marker inside or after entropy-coded data: FF, then a byte that is neither stuffing (00), a restart
# marker (D0-D7), nor another fill byte (FF).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


class ImageTooCostlyError(ImageDecodeError):
    """An image that would take unreasonable time or memory to decode (refused before decoding it)."""


@dataclass(frozen=True)
class ScanCount:
    scans: int  # start-of-scan markers libjpeg would process (stops counting at ``stop_at``)
    complete: bool  # False: the count stopped early at the limit, or the file ended before its EOI marker


def count_jpeg_scans(data: bytes, first_sos: int, stop_at: int) -> ScanCount:
    """Start-of-scan markers from ``first_sos`` (offset of the first one) to the end-of-image marker.

    Stops once ``stop_at`` scans are seen (enough to refuse), so a 20 MB bomb costs the same walk as a small one.
    """
    pos, n, scans = first_sos, len(data), 0
    while pos + 1 < n:
        marker = data[pos + 1]
        if marker == _EOI:
            return ScanCount(scans, True)
        if marker in _STANDALONE:
            pos += 2
            continue
        if pos + 4 > n:
            break
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == _SOS:
            scans += 1
            if scans >= stop_at:
                return ScanCount(scans, False)
        # After a scan header comes entropy-coded data; after any other segment a marker should follow at
        # once, but libjpeg skips whatever is not one: both cases are "search for the next real marker".
        found = _NEXT_MARKER.search(data, end)
        if found is None:
            break
        pos = found.start()
    return ScanCount(scans, False)


def check_jpeg_cost(
    data: bytes, name: str, first_sos: int, size: tuple[int, int] | None, max_scans: int = MAX_JPEG_SCANS
) -> None:
    """Refuse a JPEG with more than ``max_scans`` scans, or whose scans x pixels exceed ``max_scans`` x
    :data:`PIXELS_PER_SCAN`.

    ``first_sos`` and ``size`` ((height, width) from the start-of-frame) come from the header walk.
    """
    pixels = size[0] * size[1] if size else 0
    max_scan_pixels = max_scans * PIXELS_PER_SCAN
    # The most scans the pixel budget allows for this frame (a baseline image has one per component, <= 4).
    by_pixels = max_scan_pixels // pixels if pixels else max_scans
    limit = max(1, min(max_scans, by_pixels))
    count = count_jpeg_scans(data, first_sos, limit + 1)
    if count.scans <= limit:
        return
    if limit == max_scans:
        raise ImageTooCostlyError(
            f"{name}: JPEG has more than {max_scans} scans (a progressive-JPEG scan bomb?); the limit is {max_scans}"
        )
    raise ImageTooCostlyError(
        f"{name}: progressive JPEG of {size[1]}x{size[0]} pixels with more than {limit} scans "  # type: ignore[index]
        f"exceeds the decode budget of {max_scan_pixels} scan-pixels"
    )
