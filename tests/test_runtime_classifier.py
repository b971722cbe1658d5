"""Classifier: contract reading, golden parity without torch, validation of odd models, batching."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures_golden import check_golden

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import ContractError, ModelLoadError, ProviderError
from edgecls.runtime.images.decode import decode_image
from edgecls.runtime.inference.classifier import Classifier, Prediction, top_k_predictions
from edgecls.runtime.inference.scores import softmax


def test_golden_parity_without_torch(runtime_models):
    check_golden(runtime_models.cnn)


def test_golden_check_runs_in_a_torch_free_process(runtime_models):
    code = (
        "import sys, pathlib\n"
        "sys.path.insert(0, 'tests')\n"
        "from fixtures_golden import check_golden\n"
        f"check_golden(pathlib.Path({str(runtime_models.cnn)!r}))\n"
        "bad = [m for m in ('torch', 'onnx') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    # pytest itself must not be needed by check_golden's module at import: it only imports numpy/edgecls.
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_contract_read_from_metadata(runtime_models):
    clf = Classifier(runtime_models.cnn)
    assert clf.contract == runtime_models.contract
    assert clf.fixed_batch is None
    assert clf.providers == ["CPUExecutionProvider"]
    assert "3 classes" in repr(clf)


def test_predict_returns_sorted_top_k(runtime_models, runtime_images):
    clf = Classifier(runtime_models.cnn)
    preds = clf.predict(decode_image(runtime_images.good[0]), top_k=3)
    assert [type(p) for p in preds] == [Prediction] * 3
    scores = [p.score for p in preds]
    assert scores == sorted(scores, reverse=True)
    assert abs(sum(scores) - 1.0) < 1e-5
    assert {p.label for p in preds} == set(runtime_models.contract.labels)
    assert all(clf.labels[p.index] == p.label for p in preds)
    # top_k above the class count is capped; a path works too.
    assert len(clf.predict(runtime_images.good[0], top_k=10)) == 3
    assert preds[0].to_dict()["label"] == preds[0].label


def test_odd_arrays_are_coerced(runtime_models):
    clf = Classifier(runtime_models.cnn)
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (40, 30), dtype=np.uint8)
    rgba = rng.integers(0, 256, (40, 30, 4), dtype=np.uint8)
    deep = rng.integers(0, 65536, (40, 30, 3), dtype=np.uint16)
    out = clf.predict_batch([gray, rgba, deep, np.zeros((1, 1, 3), np.uint8)], top_k=1)
    assert len(out) == 4 and all(len(p) == 1 for p in out)


def test_fixed_batch_model_splits_and_pads(runtime_models):
    dyn = Classifier(runtime_models.cnn)
    fixed = Classifier(runtime_models.fixed2)
    assert fixed.fixed_batch == 2
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(fixed.logits_batch(x), dyn.logits_batch(x), atol=1e-5)
    assert fixed.logits_batch(x[:1]).shape == (1, 3)
    assert dyn.logits_batch(x[:0]).shape == (0, 3)


def test_batch_equals_singles(runtime_models):
    clf = Classifier(runtime_models.cnn)
    x = np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32)
    singles = np.concatenate([clf.logits_batch(x[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(clf.logits_batch(x), singles, atol=1e-5)


def test_foreign_model_needs_labels(runtime_models):
    with pytest.raises(ContractError, match="no edgecls contract"):
        Classifier(runtime_models.foreign)
    clf = Classifier(runtime_models.foreign, contract={"labels": ["a", "b", "c"], "resize_mode": "stretch"})
    assert clf.contract.input_size == (32, 32)  # taken from the graph
    assert clf.contract.resize_mode == "stretch"
    assert len(clf.predict(np.zeros((10, 10, 3), np.uint8), top_k=2)) == 2
    with pytest.raises(ContractError, match="3 classes but the contract has 2"):
        Classifier(runtime_models.foreign, contract={"labels": ["a", "b"]})


def test_full_contract_and_overrides(runtime_models):
    c = ModelContract(labels=("x", "y", "z"), input_size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3)
    assert Classifier(runtime_models.foreign, contract=c).contract == c
    over = Classifier(runtime_models.cnn, contract={"labels": ["p", "q", "r"]})
    assert over.labels == ("p", "q", "r")
    assert over.contract.input_size == (32, 32)


@pytest.mark.parametrize(
    ("attr", "err", "match"),
    [
        ("nonclassifier", ModelLoadError, "expected 2-D"),
        ("two_inputs", ModelLoadError, "1 input and 1 output"),
        ("int_input", ModelLoadError, "4-D float"),
        ("wrong_size", ContractError, "does not match"),
        ("corrupt", ModelLoadError, "cannot load model"),
        ("empty", ModelLoadError, "0 bytes"),
    ],
)
def test_bad_models_raise_one_clear_error(runtime_models, attr, err, match):
    path = getattr(runtime_models, attr)
    with pytest.raises(err, match=match) as info:
        Classifier(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg


def test_missing_model_and_unknown_provider(tmp_path, runtime_models):
    with pytest.raises(ModelLoadError, match="no such model"):
        Classifier(tmp_path / "nope.onnx")
    with pytest.raises(ProviderError, match="not available"):
        Classifier(runtime_models.cnn, provider="cuda")
    with pytest.raises(ProviderError, match="unknown execution provider"):
        Classifier(runtime_models.cnn, provider="warp-drive")
    assert Classifier(runtime_models.cnn, provider="cpu", threads=1, strict=True).providers == [
        "CPUExecutionProvider"
    ]


def test_softmax_and_top_k_helpers():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    p = softmax(logits.copy())
    assert np.isfinite(p).all() and np.allclose(p.sum(1), 1)
    best = top_k_predictions(p, ("a", "b", "c"), 2)
    assert [q.label for q in best[0]] == ["a", "b"]
    assert len(best[1]) == 2
