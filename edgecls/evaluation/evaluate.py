"""``edgecls eval``: top-1/top-5, per-class precision/recall/F1 and the confusion matrix of any model variant."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.data.eval_set import load_eval_set
from edgecls.evaluation.metrics import ClassificationMetrics, classification_metrics
from edgecls.evaluation.predictors import load_predictor, predict_imageset
from edgecls.runtime.atomic import atomic_write_text


@dataclass
class EvalResult:
    model: str
    data: str
    split: str
    metrics: ClassificationMetrics
    skipped: list[str]
    out_dir: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "data": self.data,
            "split": self.split,
            **self.metrics.to_dict(),
            "skipped": self.skipped,
        }


def evaluate(
    model: str | Path,
    data: str | None = None,
    split: str = "test",
    seed: int | None = None,
    out_dir: Path | None = None,
    provider: str = "auto",
    batch_size: int = 64,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    trust_checkpoint: bool = False,
) -> EvalResult:
    """Evaluate ``model`` (run dir, checkpoint or .onnx) on ``split`` of ``data``.

    ``data`` defaults to the data the model was trained on; with that data the default seed is the training
    seed, so ``test`` is the very split training held out. ``trust_checkpoint`` lets a checkpoint run code
    while it loads (``--trust-checkpoint``).
    """
    pred = load_predictor(model, provider=provider, trust_checkpoint=trust_checkpoint)
    from edgecls.runtime.errors import DataError

    spec = data or pred.source.get("data")
    if not spec:
        raise DataError(f"{model}: no DATA given and the model does not record what it was trained on")
    if seed is None:
        seed = int(pred.source.get("seed") or 0) if spec == pred.source.get("data") else 0
    images = load_eval_set(spec, split=split, seed=seed, classes=pred.contract.labels)
    if on_start:
        on_start(len(images))
    logits, labels, broken = predict_imageset(pred, images, batch_size=batch_size, on_batch=on_batch)
    metrics = classification_metrics(logits, labels, pred.contract.labels)
    result = EvalResult(str(model), str(spec), split, metrics, broken, out_dir)
    if out_dir is not None:
        from edgecls.evaluation.plots import plot_confusion

        atomic_write_text(Path(out_dir) / "metrics.json", json.dumps(result.to_dict(), indent=2) + "\n")
        plot_confusion(
            metrics.confusion,
            pred.contract.labels,
            Path(out_dir) / "confusion.png",
            title=f"{Path(model).name} on {spec} ({split}): top-1 {100 * metrics.top1:.2f}%",
        )
    return result
