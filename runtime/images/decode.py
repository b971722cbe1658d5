"""Image decoding: files or bytes -> ``uint8[H, W, 3]`` BGR, the one entry point for every stage.

Decisions (the same in training, export calibration and the runtime, since all of them call this):
- Colour: grayscale, palette and RGBA/LA images become 3-channel BGR (alpha is dropped, not composited);
  16-bit images are reduced to 8 bits (OpenCV's ``>> 8``).
- EXIF orientation is applied (OpenCV's default for IMREAD_COLOR), so a phone photo is seen upright.
- EXIF orientation is applied by ``cv2.imdecode`` on bytes too (verified by tests/test_reliability_images.py
  against Pillow's ``ImageOps.exif_transpose``); training reads files through this same function.
- A JPEG without its end-of-image marker is treated as truncated and rejected, although libjpeg would
  return a half-grey picture: classifying half an image silently is worse than naming the file. The marker
  is found by the pre-scan's walk through the scans, not looked for at the very end, so JPEGs with data
  appended after the image (phone "motion photos" carry an MP4 there) still decode.
- Paths are read with numpy so unicode and spaces work on every platform.
- Reduced JPEG decoding: given ``min_size`` (what the model's resize needs, see
  :func:`edgecls.runtime.inference.preprocess.decode_floor`), a JPEG at least 2x larger on both axes is decoded at
  1/2, 1/4 or 1/8 scale by libjpeg's scaled IDCT (``IMREAD_REDUCED_COLOR_*``) instead of decoding every pixel
  only to average them away in the resize. Measured on a 12 MP photo: 46 ms -> 11 ms. The result is still at
  least ``min_size``, so the resize that follows remains a downscale; the scaled IDCT averages each 8x8 block
  like an area filter, so the picture is if anything less aliased than full decode + linear resize.
  Evaluation, calibration, export checks and the runtime all pass the same ``min_size``; training crops for
  augmentation decode in full (a small random crop needs the full resolution).
- Bounded work: before any decoder sees the bytes, :func:`edgecls.runtime.images.prescan.scan.prescan` walks the
  format's structure (numpy/``struct``, no decoder) and refuses, with one line, a file whose chunks, segments,
  scans, stray bytes or TIFF tiles would cost unreasonable time or memory (``ImageTooCostlyError``), whose header
  declares more than ``max_pixels`` (``TooManyPixelsError``), or whose format it does not walk. Floating-point
  formats (PFM, Radiance HDR) are refused: OpenCV squeezes their light values into 0-255 without tone mapping,
  and a nearly black picture would be classified silently.
- Error messages never carry OpenCV's internals (its assertion text and build paths): they name the file
  and say what is wrong in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edgecls.runtime.errors import ImageDecodeError
from edgecls.runtime.images.file_guard import DEFAULT_MAX_FILE_MB, MB, read_regular_file
from edgecls.runtime.images.prescan.limits import DEFAULT_MAX_PIXELS, MAX_JPEG_SCANS
from edgecls.runtime.images.prescan.scan import prescan

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".pnm"}
)

_REDUCED_FLAGS = (  # largest reduction first
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)


def is_image_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def reduced_decode_flag(size: tuple[int, int], min_size: tuple[int, int]) -> int:
    """The OpenCV read flag decoding a ``size`` JPEG as small as possible but still >= ``min_size``.

    libjpeg's 1/k output is ``ceil(side / k)``. Both orientations must fit, because EXIF rotation is applied
    after decoding and ``size`` is the stored one.
    """
    h, w = size
    for k, flag in _REDUCED_FLAGS:
        rh, rw = -(-h // k), -(-w // k)
        upright = rh >= min_size[0] and rw >= min_size[1]
        rotated = rh >= min_size[1] and rw >= min_size[0]
        if upright and rotated:
            return flag
    return cv2.IMREAD_COLOR


def decode_bytes(
    data: bytes,
    name: str = "<bytes>",
    min_size: tuple[int, int] | None = None,
    max_jpeg_scans: int = MAX_JPEG_SCANS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Encoded image bytes -> ``uint8[H, W, 3]`` BGR, or :class:`ImageDecodeError` naming ``name``.

    ``min_size``: ``(h, w)`` the consumer needs at least; large JPEGs are then decoded at a reduced scale.
    ``max_jpeg_scans``, ``max_pixels``: the pre-scan's limits (its refusals are ``ImageTooCostlyError`` and
    ``TooManyPixelsError``, both ImageDecodeErrors; see :mod:`edgecls.runtime.images.prescan.scan`).
    """
    if len(data) == 0:
        raise ImageDecodeError(f"{name}: empty file (0 bytes)")
    declared = prescan(data, name, max_pixels, max_jpeg_scans)
    flag = cv2.IMREAD_COLOR
    if declared.jpeg is not None:
        if declared.jpeg.truncated:
            raise ImageDecodeError(f"{name}: truncated JPEG (no end-of-image marker)")
        if min_size is not None:
            flag = reduced_decode_flag((declared.height, declared.width), min_size)
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buf, flag)
    except cv2.error as e:  # OpenCV raises for some malformed headers instead of returning None
        raise ImageDecodeError(f"{name}: {_opencv_refusal(e)}") from e
    if image is None or image.size == 0:
        raise ImageDecodeError(f"{name}: not a decodable image (corrupt, truncated or unsupported format)")
    return to_bgr_uint8(image, name)


def _opencv_refusal(error: cv2.error) -> str:
    """One line for an OpenCV decode exception, without its source paths, line numbers or assertion text."""
    if "CV_IO_MAX_IMAGE_PIXELS" in str(error) or "validateInputImageSize" in str(error):
        return "image is larger than the decoder's pixel limit (OPENCV_IO_MAX_IMAGE_PIXELS)"
    return "not a decodable image (the decoder refused its header)"


def decode_image(
    path: str | os.PathLike[str],
    min_size: tuple[int, int] | None = None,
    max_bytes: int = DEFAULT_MAX_FILE_MB * MB,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read one image file through the guard and decode it to ``uint8[H, W, 3]`` BGR: the one reader of image
    files (run, batch, training, calibration, evaluation, bench). ``max_bytes``: the file size cap
    (:mod:`edgecls.runtime.images.file_guard`); ``min_size``, ``max_pixels``: see :func:`decode_bytes`."""
    return decode_bytes(read_regular_file(path, max_bytes), str(path), min_size, max_pixels=max_pixels)


def to_bgr_uint8(image: np.ndarray, name: str = "<array>") -> np.ndarray:
    """Coerce any plausible image array (gray, BGRA, 16-bit, float in [0, 1]) to ``uint8[H, W, 3]`` BGR.

    Used for decoded files, video frames and arrays users pass to the Python API.
    """
    if not isinstance(image, np.ndarray):
        raise ImageDecodeError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageDecodeError(f"{name}: unsupported image shape {image.shape}")
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        raise ImageDecodeError(f"{name}: unsupported channel count {image.shape[2]}")
    if image.dtype != np.uint8:
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        elif image.dtype in (np.float32, np.float64, np.float16):
            if not np.isfinite(image).all():
                raise ImageDecodeError(f"{name}: image contains NaN or infinite values")
            image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        elif image.dtype == np.bool_ or np.issubdtype(image.dtype, np.integer):
            image = np.clip(image, 0, 255).astype(np.uint8)
        else:
            raise ImageDecodeError(f"{name}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)
