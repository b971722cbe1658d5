"""A frame with its top labels, scores and FPS drawn in the corner: ``edgecls run --save/--show`` and
``edgecls serve``'s live feed draw with it.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgecls.runtime.inference.classifier import Prediction


def annotate(image: np.ndarray, preds: list[Prediction], fps: float | None = None, lines: int = 1) -> np.ndarray:
    """A copy of ``uint8[H, W, 3]`` BGR with the best ``lines`` labels and scores (and FPS) in the corner."""
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.4, min(w, h) / 640.0)
    thick = max(1, int(round(scale * 2)))
    texts = [f"{p.label} {p.score:.2f}" for p in preds[:lines]]
    if fps is not None:
        texts.append(f"{fps:.1f} FPS")
    y = 0
    for text in texts:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        y += th + base + 4
        cv2.rectangle(out, (0, y - th - base - 4), (tw + 8, y + 2), (0, 0, 0), -1)
        cv2.putText(out, text, (4, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out
