"""Logits for an ImageSet from a checkpoint (PyTorch) or any ONNX variant (onnxruntime), through the same
preprocessing. The ONNX path imports no torch, so ``edgecls eval model.int8.onnx DATA`` works on a device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecls.data.imageset import ImageSet
from edgecls.runtime.contract.class_labels import label_indices
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import DataError, ImageDecodeError
from edgecls.runtime.inference.preprocess import decode_floor, preprocess_batch

LogitsFn = Callable[[np.ndarray], np.ndarray]  # float32[N, 3, h, w] -> float32[N, C]


@dataclass
class LoadedPredictor:
    contract: ModelContract
    logits: LogitsFn
    kind: str  # "checkpoint" or "onnx"
    source: dict  # how the model was trained (data spec, seed), when known


def load_predictor(
    model: str | Path, provider: str = "auto", threads: int | None = None, trust_checkpoint: bool = False
) -> LoadedPredictor:
    """``trust_checkpoint`` lets a checkpoint run code while it loads (``--trust-checkpoint``)."""
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        return _onnx_predictor(path, provider, threads)
    return _checkpoint_predictor(path, trust_checkpoint)


def _onnx_predictor(path: Path, provider: str, threads: int | None) -> LoadedPredictor:
    # The runtime's Classifier reads the contract, validates the graph and handles fixed-batch models.
    from edgecls.runtime.inference.classifier import Classifier

    clf = Classifier(path, provider=provider, threads=threads)  # no contract: one ContractError naming the file
    prov = clf.contract.provenance
    source = {"data": prov.get("data"), "seed": prov.get("seed", 0)}
    return LoadedPredictor(clf.contract, clf.logits_batch, "onnx", source)


def _checkpoint_predictor(path: Path, trust: bool) -> LoadedPredictor:
    from edgecls.training import torch_inference
    from edgecls.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, trust=trust)
    model = ckpt.build_model()

    def logits(x: np.ndarray) -> np.ndarray:
        return torch_inference.torch_logits(model, x, batch_size=None)  # x is already one batch

    data = ckpt.raw.get("data", {})
    return LoadedPredictor(
        ckpt.contract, logits, "checkpoint", {"data": data.get("spec"), "seed": data.get("seed", 0)}
    )


def iter_batches(
    images: ImageSet, contract: ModelContract, batch_size: int, broken: list[str]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (float32[B, 3, h, w], int64[B] data-class labels); unreadable images go to ``broken``."""
    buf: list[np.ndarray] = []
    labels: list[int] = []
    floor = decode_floor(contract)
    for i in range(len(images)):
        try:
            buf.append(images.load(i, floor))
        except ImageDecodeError as e:
            broken.append(str(e))
            continue
        labels.append(images.label(i))
        if len(buf) == batch_size:
            yield preprocess_batch(buf, contract), np.asarray(labels, np.int64)
            buf, labels = [], []
    if buf:
        yield preprocess_batch(buf, contract), np.asarray(labels, np.int64)


def predict_imageset(
    pred: LoadedPredictor,
    images: ImageSet,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """-> (float32[N, C] logits, int64[N] labels in the model's label space, unreadable files)."""
    mapping = label_indices(images.classes, pred.contract.labels, "evaluation data")  # data class -> model output
    broken: list[str] = []
    all_logits, all_labels = [], []
    for x, y in iter_batches(images, pred.contract, batch_size, broken):
        all_logits.append(pred.logits(x))
        all_labels.append(mapping[y])
        if on_batch:
            on_batch(len(y))
    if not all_logits:
        raise DataError("no readable images to evaluate")
    return np.concatenate(all_logits), np.concatenate(all_labels), broken
