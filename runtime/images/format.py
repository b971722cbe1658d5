"""Which image format encoded bytes are, from their leading signature (as both Pillow and OpenCV pick a decoder).

``edgecls serve`` decodes only the formats whose width and height Pillow reads from the header before any
pixel is decoded (so the pixel limit is checked first) and that OpenCV decodes to 8-bit pictures; the rest get
415. OpenCV decodes more (Radiance HDR, PFM, PAM, AVIF, Sun raster, JPEG 2000, ...), but Pillow cannot size
HDR, PFM or PAM, and HDR/PFM hold floating-point light values that an 8-bit conversion turns into a nearly
black or white picture, which would be classified silently. Names are Pillow's ``Image.format`` values.
"""

from __future__ import annotations

SERVED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF", "PPM")
# Floating-point formats: OpenCV's IMREAD_COLOR squeezes their values into 0-255 without tone mapping.
FLOAT_FORMATS: tuple[str, ...] = ("HDR", "PFM")


def sniff_format(data: bytes) -> str | None:
    """The format named by the first bytes, or None when it is none of the served formats, PFM, HDR or PAM."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"II*\x00", b"MM\x00*")):  # classic TIFF (not BigTIFF)
        return "TIFF"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "PPM"  # PBM/PGM/PPM, ASCII or binary (Pillow names them all PPM); P7 is PAM
    if head.startswith((b"PF", b"Pf")) and head[2:3].isspace():
        return "PFM"
    if head.startswith(b"P7") and head[2:3].isspace():
        return "PAM"  # OpenCV decodes it, Pillow cannot size it
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        return "HDR"
    return None
