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


@dataclass(frozen=True)
class EvalOptions:
    """What ``edgecls eval`` evaluates, on what, and where the metrics go (its flags, one field each)."""

    model: str | Path  # run directory, checkpoint (.pt) or .onnx variant
    data: str | None = None  # None: the data the model was trained on
    split: str = "test"  # train, val, test or all
    seed: int | None = None  # None: the training seed when data is the training data, else 0
    out_dir: Path | None = None  # metrics.json + confusion.png; None writes nothing (see default_eval_dir)
    provider: str = "auto"  # ONNX models only
    batch_size: int = 64
    trust_checkpoint: bool = False  # let a checkpoint run code while it loads (--trust-checkpoint)


def default_eval_dir(model: Path) -> Path:
    """Where ``edgecls eval`` writes without --out: RUN/eval, or eval/<file_name> beside a model file."""
    if model.is_dir():
        return model / "eval"
    return model.parent / "eval" / model.name.replace(".", "_")


def evaluate(
    options: EvalOptions,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> EvalResult:
    """Evaluate ``options.model`` (run dir, checkpoint or .onnx) on ``options.split`` of ``options.data``.

    ``data`` defaults to the data the model was trained on; with that data the default seed is the training
    seed, so ``test`` is the very split training held out. ``on_start`` gets the image count, ``on_batch``
    each batch's size (progress bars).
    """
    model, data, split, seed, out_dir = options.model, options.data, options.split, options.seed, options.out_dir
    pred = load_predictor(model, provider=options.provider, trust_checkpoint=options.trust_checkpoint)
    from edgecls.runtime.errors import DataError

    spec = data or pred.source.get("data")
    if not spec:
        raise DataError(f"{model}: no DATA given and the model does not record what it was trained on")
    if seed is None:
        seed = int(pred.source.get("seed") or 0) if spec == pred.source.get("data") else 0
    images = load_eval_set(spec, split=split, seed=seed, classes=pred.contract.labels)
    if on_start:
        on_start(len(images))
    logits, labels, broken = predict_imageset(pred, images, batch_size=options.batch_size, on_batch=on_batch)
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
