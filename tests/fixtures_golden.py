"""The check any golden file (model.golden.npz beside an ONNX model) must pass. Torch-free on purpose: it imports
numpy and edgecls.runtime only, so a process without torch or onnx runs it (test_runtime_classifier checks that)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.inference.preprocess import preprocess_batch


def check_golden(model_path: Path) -> None:
    """The check any golden file must pass: same preprocessing, same logits as PyTorch, same argmax."""
    golden = np.load(model_path.with_name(model_path.stem + ".golden.npz"))
    clf = Classifier(model_path, provider="cpu")
    assert tuple(str(x) for x in golden["labels"]) == clf.labels
    images = golden["images"]
    assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[3] == 3
    inputs = preprocess_batch(list(images), clf.contract)
    np.testing.assert_allclose(inputs, golden["inputs"], atol=1e-6, rtol=0)
    logits = clf.logits_batch(golden["inputs"])
    np.testing.assert_allclose(logits, golden["logits"], atol=1e-4, rtol=0)
    assert (logits.argmax(1) == golden["logits"].argmax(1)).all()
    # The image path gives the same answer as the preprocessed path.
    preds = clf.predict_batch(list(images), top_k=1)
    assert [p[0].index for p in preds] == list(golden["logits"].argmax(1))
