"""The limits the pre-scan applies, each with what it defends (docs/SECURITY.md has the same table).

Measured here (OpenCV 5.0 with libjpeg-turbo 3.1, libpng 1.6, libtiff 4.7; Pillow 13): a decoder walks every
chunk or segment before the image data, an empty one costing OpenCV 0.05-0.16 us and Pillow's Python parsers
1.3-2.6 us, and libjpeg keeps a copy of every APP1 segment (about 150 bytes of bookkeeping each); 19 MB of empty
chunks is 1.6 million of them. Every count below is far above what a real camera or phone photo has (under 30
segments or chunks: tests/test_parse_bombs.py reads real ones) and low enough that walking up to it costs about a
millisecond.
"""

from __future__ import annotations

from edgecls.runtime.errors import ImageDecodeError, ImageTooCostlyError, TooManyPixelsError

#: Declared width x height (``--max-pixels`` of run, batch and serve). A 40 Mpx RGB picture is 120 MB decoded; a
#: 100-byte PNG may declare 30000 x 30000 (2.7 GB). 48-50 Mpx phone modes are above it: raise the flag for those.
DEFAULT_MAX_PIXELS = 40_000_000

#: JPEG scans (``--max-jpeg-scans``): libjpeg's default progression has 10 (6 for grey), mozjpeg's ~20.
MAX_JPEG_SCANS = 100
#: Scans x pixels, the work of a progressive decode (every scan visits every block), may not exceed
#: ``max_scans`` scans of this many pixels: a 100 Mpx JPEG gets 40 of the 100 scans a 40 Mpx one may have.
PIXELS_PER_SCAN = 40_000_000

#: JPEG marker segments from SOI to EOI (APPn, COM, tables, frame and scan headers; restart markers inside the
#: image data are not segments), besides 2 per allowed scan (its header and a table: see prescan.jpeg.segment_limit).
#: Phones write 10-30; extended XMP (depth maps) adds one per 64 KB.
MAX_JPEG_SEGMENTS = 1_000
#: Bytes outside any segment where a marker is expected: ``FF`` fill bytes before a marker and junk that libjpeg
#: skips with a warning. Encoders write none; 19 MB of them cost Pillow 7.3 s.
MAX_JPEG_STRAY_BYTES = 4_096

#: Chunks before the image data (PNG: before the first IDAT; WebP: before the first VP8/VP8L/ANMF/ALPH): what
#: header parsers walk one by one. Real files: under 20 (text, ICC, EXIF, XMP, physical size, ...).
MAX_HEADER_CHUNKS = 1_000
#: Chunks in a whole PNG or WebP file: this many, or one per ``BYTES_PER_CHUNK`` bytes of file if that is more
#: (libpng writes 8 KiB IDAT chunks: a 100 MB PNG has 12,200). Bounds the per-chunk work after the header too.
MAX_CHUNKS = 10_000
BYTES_PER_CHUNK = 4_096

#: GIF extension blocks and data sub-blocks before the first image (comments, application data, XMP, whose text
#: is stored as sub-blocks of 30-120 bytes).
MAX_GIF_BLOCKS = 10_000

#: Entries in a TIFF's first directory (IFD). libtiff merges each unknown tag into its field table: 1,000 entries
#: cost 8.5 ms, 4,000 cost 120 ms (quadratic) and log one warning each. Baseline + EXIF-style tags: under 100.
MAX_TIFF_ENTRIES = 1_000
#: A TIFF tile is inflated into one buffer of its own size (and OpenCV converts it at 4 bytes per pixel): it may
#: cover the image (sides rounded up to 16, as tiles are) or this many pixels (2048 x 2048, a 16 MB buffer) if more,
#: and never more than the pixel limit. A 16x16 image declaring one 16000x16000 tile allocated 1 GB per decode.
TIFF_BLOCK_FLOOR = 2048 * 2048

#: PNM (PBM/PGM/PPM) text header: magic, comments, width, height, maxval. A 19 MB comment costs Pillow 4.4 s.
MAX_PNM_HEADER_BYTES = 4_096


def check_declared_pixels(width: int, height: int, name: str, max_pixels: int) -> None:
    """Refuse a header declaring an empty image, or more than ``max_pixels``, before any pixel is decoded.

    The one pixel check of edgecls: run, batch, serve, training, calibration and bench readers all reach it
    through :func:`edgecls.runtime.images.decode.decode_bytes`.
    """
    if width < 1 or height < 1:
        raise ImageDecodeError(f"{name}: broken header (declares a {width}x{height} image)")
    if width * height > max_pixels:
        raise TooManyPixelsError(
            f"{name}: image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} (--max-pixels)"
        )


class ChunkCounter:
    """Counts a PNG's or WebP's chunks as they are walked, refusing past :data:`MAX_HEADER_CHUNKS` before the image
    data or past :data:`MAX_CHUNKS` (or one per :data:`BYTES_PER_CHUNK` of file) in all."""

    def __init__(self, name: str, kind: str, file_bytes: int, image_data: tuple[bytes, ...]) -> None:
        self.name, self.kind, self.image_data = name, kind, image_data
        self.budget = max(MAX_CHUNKS, file_bytes // BYTES_PER_CHUNK)
        self.chunks, self.in_header = 0, True

    def add(self, chunk_type: bytes) -> None:
        self.chunks += 1
        if self.in_header and chunk_type in self.image_data:
            self.in_header = False
        elif self.in_header and self.chunks > MAX_HEADER_CHUNKS:
            raise ImageTooCostlyError(f"{self.name}: {self.kind} has more than {MAX_HEADER_CHUNKS} chunks before "
                                      "its image data (a parser work bomb?)")
        if self.chunks > self.budget:
            raise ImageTooCostlyError(
                f"{self.name}: {self.kind} has more than {self.budget} chunks (a parser work bomb?); the limit is "
                f"{MAX_CHUNKS} or one per {BYTES_PER_CHUNK // 1024} KiB of file"
            )
