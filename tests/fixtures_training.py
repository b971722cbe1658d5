"""Training data on disk that a model can only tell apart by learning (fine-tuning and architecture tests)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def stripes_folder(root: Path, per_class: int = 12, size: int = 24, seed: int = 0) -> Path:
    """Two classes a model can only tell apart by learning: horizontal vs vertical noisy stripes (PNG)."""
    rng = np.random.default_rng(seed)
    for name in ("horizontal", "vertical"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            im = np.zeros((size, size), np.float32)
            phase = int(rng.integers(0, 6))
            for k in range(phase, size, 6):
                if name == "horizontal":
                    im[k : k + 3, :] = 200
                else:
                    im[:, k : k + 3] = 200
            im = np.clip(im + rng.normal(0, 25, im.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{i:02d}.png"), im)
    return root

