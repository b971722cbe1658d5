"""Classification metrics from logits and labels (numpy only, so ONNX evaluation needs no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ClassificationMetrics:
    classes: tuple[str, ...]
    n: int
    top1: float  # fraction in [0, 1]
    top5: float | None  # only when there are more than 5 classes
    confusion: np.ndarray  # int64[C, C], rows = true class, columns = predicted
    precision: np.ndarray  # float64[C]
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray  # int64[C]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "top1": self.top1,
            "top5": self.top5,
            "per_class": {
                c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for c, p, r, f, s in zip(self.classes, self.precision, self.recall, self.f1, self.support, strict=True)
            },
            "macro_f1": float(self.f1.mean()) if len(self.f1) else 0.0,
            "classes": list(self.classes),
            "confusion": self.confusion.tolist(),
        }


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """``logits`` float[N, C], ``labels`` int[N] -> fraction whose label is among the k highest scores."""
    if len(labels) == 0:
        return 0.0
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def classification_metrics(
    logits: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]
) -> ClassificationMetrics:
    c = len(classes)
    pred = logits.argmax(axis=1)
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(c), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(c), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(c), where=denom > 0)
    return ClassificationMetrics(
        classes=classes,
        n=int(len(labels)),
        top1=top_k_accuracy(logits, labels, 1),
        top5=top_k_accuracy(logits, labels, 5) if c > 5 else None,
        confusion=confusion,
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
    )
