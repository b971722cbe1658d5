"""Where a model's golden file lies and how it is read: torch-free, so ``edgecls selftest`` can read it on the
device (export/golden.py writes it: ``<stem>.golden.npz`` beside the fp32 model, arrays ``images`` uint8[N, 64,
64, 3] BGR, ``inputs`` float32[N, 3, h, w], ``logits`` float32[N, C] from PyTorch, ``labels`` str[C]).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

GOLDEN_SUFFIX = ".golden.npz"


def golden_path_for(onnx_path: str | os.PathLike[str]) -> Path:
    """``model.onnx`` -> ``model.golden.npz`` (the file export writes for its fp32 model)."""
    p = Path(onnx_path)
    return p.with_name(f"{p.stem}{GOLDEN_SUFFIX}")


def find_golden(onnx_path: str | os.PathLike[str]) -> Path | None:
    """The golden file a model is checked against: its own, else its fp32 model's (``model.int8.onnx`` and
    ``model.fp16.onnx`` share ``model.golden.npz``: their outputs are compared to the fp32 references)."""
    p = Path(onnx_path)
    stem = p.name[: -len(".onnx")] if p.name.endswith(".onnx") else p.stem
    candidates = [golden_path_for(p)]
    while "." in stem:
        stem = stem.rsplit(".", 1)[0]
        candidates.append(p.with_name(f"{stem}{GOLDEN_SUFFIX}"))
    return next((c for c in candidates if c.is_file()), None)


def read_golden(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
