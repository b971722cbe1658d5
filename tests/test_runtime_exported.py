"""The runtime on real exports (fp32 + golden file, int8, fp16) made by the export stage from a tiny run."""

from __future__ import annotations

import numpy as np
import pytest
from test_runtime_classifier import check_golden

from edgecls.runtime.classifier import Classifier


def test_exported_golden_file_checks_without_torch(exported_tiny):
    check_golden(exported_tiny / "model.onnx")


@pytest.mark.parametrize("variant", ["model.int8.onnx", "model.fp16.onnx"])
def test_exported_variants_load_and_mostly_agree(exported_tiny, variant):
    path = exported_tiny / variant
    if not path.exists():
        pytest.skip(f"export did not write {variant}")
    golden = np.load(exported_tiny / "model.golden.npz")
    ref = Classifier(exported_tiny / "model.onnx")
    clf = Classifier(path)
    assert clf.contract.labels == ref.contract.labels
    assert clf.contract.input_size == ref.contract.input_size
    images = list(golden["images"])
    top = [p[0].index for p in clf.predict_batch(images, top_k=1)]
    ref_top = [p[0].index for p in ref.predict_batch(images, top_k=1)]
    assert np.mean(np.equal(top, ref_top)) >= 0.5
