"""Training augmentation on decoded ``uint8[H, W, 3]`` BGR images, applied before the contract's preprocessing.

Every random choice comes from the ``numpy.random.Generator`` passed in, which the training loop seeds per
(seed, epoch, sample index): augmentation is reproducible and ``--resume`` replays exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    crop_scale: tuple[float, float] | None = (0.6, 1.0)  # random resized crop: area fraction kept; None = off
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect-ratio range of the crop
    hflip: bool = True  # off for data whose meaning flips (digits, text)
    jitter: float = 0.2  # brightness/contrast/saturation strength, 0 = off
    noise_std: float = 4.0  # gaussian pixel noise (0..255 scale), 0 = off

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(crop_scale=None, hflip=False, jitter=0.0, noise_std=0.0)


def random_resized_crop(
    img: np.ndarray, rng: np.random.Generator, scale: tuple[float, float], ratio: tuple[float, float]
) -> np.ndarray:
    """Crop a random region of ``scale`` area fraction and ``ratio`` aspect (size is restored later)."""
    h, w = img.shape[:2]
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        cw = int(round(np.sqrt(target * aspect)))
        ch = int(round(np.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            return img[top : top + ch, left : left + cw]
    return img


def color_jitter(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation each scaled by a factor in [1 - s, 1 + s]."""
    x = img.astype(np.float32)
    b, c, s = rng.uniform(1 - strength, 1 + strength, 3)
    x *= b
    x = (x - x.mean()) * c + x.mean()
    gray = x.mean(axis=2, keepdims=True)
    x = gray + (x - gray) * s
    return np.clip(x, 0, 255).astype(np.uint8)


def augment(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """``uint8[H, W, 3]`` -> ``uint8[H', W', 3]`` (crop may change the size; preprocessing resizes)."""
    if cfg.crop_scale is not None:
        img = random_resized_crop(img, rng, cfg.crop_scale, cfg.crop_ratio)
    if cfg.hflip and rng.random() < 0.5:
        img = cv2.flip(img, 1)
    if cfg.jitter > 0:
        img = color_jitter(img, rng, cfg.jitter)
    if cfg.noise_std > 0:
        noise = rng.normal(0.0, cfg.noise_std, img.shape).astype(np.float32)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)
