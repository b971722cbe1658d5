"""What a classifier's outputs mean: probabilities, the top-1 class, and how two sets of outputs compare.

The one implementation of these for the whole package (runtime, bench, quantization, evaluation): a
model's output is ``float32[N, C]``, logits unless the contract says ``output_kind == "probabilities"``.
Kept free of torch/onnx imports: this module is part of the edge runtime.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise, numerically stable softmax: ``float32[N, C]`` -> ``float32[N, C]``, in place on ``logits``."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def to_probabilities(outputs: np.ndarray, output_kind: str) -> np.ndarray:
    """A model's ``[N, C]`` outputs as probabilities: softmax of logits, probabilities as they are (float32 copy)."""
    scores = np.array(outputs, dtype=np.float32, copy=True)
    return scores if output_kind == "probabilities" else softmax(scores)


def top1_with_score(outputs: np.ndarray, output_kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``[N, C]`` outputs -> (class index int64[N], its probability float32[N])."""
    probs = to_probabilities(outputs, output_kind)
    idx = probs.argmax(axis=1)
    return idx, probs[np.arange(len(idx)), idx]


def top1_accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows of ``[N, C]`` whose argmax equals ``int[N]`` labels (0.0 for no rows)."""
    return float(np.mean(outputs.argmax(axis=1) == labels)) if len(labels) else 0.0


def top1_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows on which two ``[N, C]`` outputs pick the same class (softmax keeps the argmax)."""
    return float(np.mean(a.argmax(axis=1) == b.argmax(axis=1))) if len(a) else 0.0
