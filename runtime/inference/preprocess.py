"""Preprocessing: the single implementation of the model contract (numpy + OpenCV).

Training's evaluation path, int8 calibration, export parity checks and the device runtime all call these
functions, so what a model saw in training is exactly what it sees on the device. Training augmentation
happens before this, on decoded ``uint8`` images.

Shapes: input ``uint8[H, W, 3]`` BGR (from :mod:`edgecls.runtime.images.decode`) -> ``float32[3, h, w]``
where ``(h, w) = contract.input_size``; batches are ``float32[N, 3, h, w]``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import cv2
import numpy as np

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.images.decode import decode_image, to_bgr_uint8

_CV2_INTERPOLATION = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
}


def resize_to_contract(image: np.ndarray, contract: ModelContract) -> np.ndarray:
    """Geometric part: ``uint8[H, W, 3]`` -> ``uint8[h, w, 3]`` per ``resize_mode`` (stretch or crop)."""
    out_h, out_w = contract.input_size
    src_h, src_w = image.shape[:2]
    interp = _CV2_INTERPOLATION[contract.interpolation]
    if contract.resize_mode == "stretch":
        if (src_h, src_w) == (out_h, out_w):
            return image
        return cv2.resize(image, (out_w, out_h), interpolation=interp)
    # shorter_side_crop (timm/torchvision eval convention): scale so the image covers
    # (out / crop_fraction) on both axes, then take the centre (out_h, out_w).
    scale = max(out_h / contract.crop_fraction / src_h, out_w / contract.crop_fraction / src_w)
    image, src_h, src_w = _trim_extreme_aspect(image, scale, out_h, out_w)
    new_w = max(out_w, int(round(src_w * scale)))
    new_h = max(out_h, int(round(src_h * scale)))
    if (new_h, new_w) != (src_h, src_w):
        image = cv2.resize(image, (new_w, new_h), interpolation=interp)
    top = (new_h - out_h) // 2
    left = (new_w - out_w) // 2
    return image[top : top + out_h, left : left + out_w]


def _trim_extreme_aspect(
    image: np.ndarray, scale: float, out_h: int, out_w: int
) -> tuple[np.ndarray, int, int]:
    """Cut away source pixels the centre crop will discard when resizing them would waste memory.

    A 1 x 10000 banner scaled so its short side covers 256 px would become a 256 x 2.5M image (2 GB) only
    to keep its centre. When an axis would grow past twice the crop plus a margin, only the central source
    span that reaches the crop (plus 4 px for the interpolation kernel) is resized. Ordinary aspect ratios
    are untouched, so their results are exactly the resize-then-crop of the convention.
    """
    src_h, src_w = image.shape[:2]
    keep_h, keep_w = src_h, src_w
    if src_h * scale > 2 * out_h + 64:
        keep_h = min(src_h, int(np.ceil(out_h / scale)) + 8)
    if src_w * scale > 2 * out_w + 64:
        keep_w = min(src_w, int(np.ceil(out_w / scale)) + 8)
    if (keep_h, keep_w) == (src_h, src_w):
        return image, src_h, src_w
    top, left = (src_h - keep_h) // 2, (src_w - keep_w) // 2
    return image[top : top + keep_h, left : left + keep_w], keep_h, keep_w


def _affine(contract: ModelContract) -> tuple[np.ndarray, np.ndarray]:
    # ((x * scale) - mean) / std == x * alpha - beta, one multiply-add per value.
    std = np.asarray(contract.std, dtype=np.float32)
    alpha = np.float32(contract.scale) / std
    beta = np.asarray(contract.mean, dtype=np.float32) / std
    return alpha, beta


def normalize(resized: np.ndarray, contract: ModelContract, out: np.ndarray | None = None) -> np.ndarray:
    """Value part: ``uint8[h, w, 3]`` BGR -> ``float32[3, h, w]`` in the contract's colour order and scale."""
    if contract.color_order == "RGB":
        resized = resized[:, :, ::-1]
    alpha, beta = _affine(contract)
    chw = np.transpose(resized, (2, 0, 1))  # view; the arithmetic below materialises it
    if out is None:
        out = np.empty(chw.shape, dtype=np.float32)
    np.multiply(chw, alpha[:, None, None], out=out, dtype=np.float32)
    out -= beta[:, None, None]
    return out


def _as_bgr(image: np.ndarray, name: str) -> np.ndarray:
    # The common case costs three attribute checks; anything else (grey, BGRA, 16-bit, float, odd strides)
    # is coerced by the decoder's rules or rejected with an ImageDecodeError naming the input.
    if (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
            and image.shape[0] > 0 and image.shape[1] > 0):
        return image
    return to_bgr_uint8(image, name)


def preprocess(image: np.ndarray, contract: ModelContract) -> np.ndarray:
    """``uint8[H, W, 3]`` BGR -> ``float32[3, h, w]``, exactly as the model was trained.

    Other arrays :func:`edgecls.runtime.images.decode.to_bgr_uint8` accepts are coerced first; the rest raise
    :class:`edgecls.runtime.errors.ImageDecodeError`.
    """
    return normalize(resize_to_contract(_as_bgr(image, "<array>"), contract), contract)


def preprocess_batch(images: Sequence[np.ndarray], contract: ModelContract) -> np.ndarray:
    """List of ``uint8[H_i, W_i, 3]`` BGR -> ``float32[N, 3, h, w]`` written into one contiguous array."""
    h, w = contract.input_size
    batch = np.empty((len(images), 3, h, w), dtype=np.float32)
    for i, image in enumerate(images):
        normalize(resize_to_contract(_as_bgr(image, f"image {i}"), contract), contract, out=batch[i])
    return batch


def decode_floor(contract: ModelContract) -> tuple[int, int] | None:
    """The smallest ``(h, w)`` a decoded image can have without the contract's resize turning into an upscale.

    shorter_side_crop scales the image to cover ``input_size / crop_fraction``; stretch to ``input_size``.
    Decoders may deliver anything at least this large (see :func:`edgecls.runtime.images.decode.decode_bytes`).
    None (decode every pixel) when the contract says ``jpeg_decode: full``.
    """
    if contract.jpeg_decode == "full":
        return None
    h, w = contract.input_size
    if contract.resize_mode == "stretch":
        return h, w
    return math.ceil(h / contract.crop_fraction), math.ceil(w / contract.crop_fraction)


def decode_for_contract(path: str | os.PathLike[str], contract: ModelContract) -> np.ndarray:
    """Decode a file for inference under ``contract``: large JPEGs at reduced scale, never below the floor."""
    return decode_image(path, decode_floor(contract))
