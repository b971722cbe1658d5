"""One torch forward pass: every caller that turns preprocessed images into logits with torch goes through
edgecls.training.torch_inference.torch_logits, and gives exactly its logits."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_runtime import export_torch
from torch.utils.data import DataLoader

from edgecls.data.load import load_data
from edgecls.runtime.inference.preprocess import preprocess_batch
from edgecls.training import torch_inference
from edgecls.training.checkpoint import load_checkpoint
from edgecls.training.torch_data import ContractDataset, collate_skipping_broken


def _test_images(n: int = 12) -> tuple[list[np.ndarray], object]:
    splits = load_data("builtin:shapes", seed=0)
    subset = splits.test.subset(list(range(n)))
    return [subset.load(i) for i in range(n)], subset


def _callers(run: Path, tmp_path: Path) -> dict[str, np.ndarray]:
    """Logits of the checkpoint ``run`` on the same 12 images from each of the callers (plus the parity check's
    torch side, returned through its golden file)."""
    from edgecls.evaluation.predictors import load_predictor
    from edgecls.export.golden import make_golden
    from edgecls.export.parity import check_parity
    from edgecls.training.eager_runner import load_torch_eager
    from edgecls.training.evaluate_run import predict_logits

    ckpt = load_checkpoint(run)
    images, subset = _test_images()
    x = preprocess_batch(images, ckpt.contract)  # float32[12, 3, 32, 32]
    out = {
        "predictors": load_predictor(run).logits(x),
        "eager_runner": load_torch_eager(str(run)).infer(x),
    }
    # training's validation: a channels_last model (as train.py makes it) over a DataLoader of one batch
    trained = ckpt.build_model().to(memory_format=torch.channels_last)
    dataset = ContractDataset(subset, ckpt.contract)  # type: ignore[arg-type]
    loader = DataLoader(dataset, batch_size=len(images), collate_fn=collate_skipping_broken)
    out["evaluate_run"], _labels = predict_logits(trained, loader, set())
    onnx = tmp_path / "model.onnx"
    export_torch(ckpt.build_model(), onnx, 32, None)
    result = check_parity(ckpt.build_model(), onnx, images, ckpt.contract)
    assert result.passed and result.images == len(images)
    out["golden"] = make_golden(images, ckpt.contract, ckpt.build_model())["logits"]
    return out


def test_every_caller_gives_the_one_functions_logits(tiny_run: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(tiny_run)
    images, _ = _test_images()
    x = preprocess_batch(images, ckpt.contract)
    expected = torch_inference.torch_logits(ckpt.build_model(), x, batch_size=None)
    assert expected.shape == (12, 5) and expected.dtype == np.float32
    got = _callers(tiny_run, tmp_path)
    for name in ("predictors", "eager_runner"):
        assert np.array_equal(got[name], expected), name
    # channels_last: the one function feeds the model the layout of its weights; the numbers may differ from
    # the NCHW run by float reordering only, and equal the one function's on the same channels_last model
    trained = ckpt.build_model().to(memory_format=torch.channels_last)
    assert np.array_equal(got["evaluate_run"], torch_inference.torch_logits(trained, x, batch_size=None))
    np.testing.assert_allclose(got["evaluate_run"], expected, atol=1e-4)


def test_every_caller_goes_through_the_one_function(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller that ran its own forward loop again would not be seen here and fail."""
    real = torch_inference.torch_logits
    calls: list[tuple[str, int]] = []

    def spy(model: torch.nn.Module, inputs: np.ndarray, batch_size: int | None = 64) -> np.ndarray:
        caller = sys._getframe(1).f_globals["__name__"]  # the module that called
        calls.append((caller, len(inputs)))
        return real(model, inputs, batch_size)

    monkeypatch.setattr(torch_inference, "torch_logits", spy)
    _callers(tiny_run, tmp_path)
    seen = {name for name, _ in calls}
    assert seen == {
        "edgecls.evaluation.predictors",
        "edgecls.training.eager_runner",
        "edgecls.training.evaluate_run",
        "edgecls.export.parity",
        "edgecls.export.golden",
    }, calls
    assert all(n > 0 for _, n in calls)


def test_eval_mode_batches_and_bad_input(tiny_run: Path) -> None:
    model = load_checkpoint(tiny_run).build_model().train()
    x = np.random.default_rng(0).normal(size=(10, 3, 32, 32)).astype(np.float32)
    whole = torch_inference.torch_logits(model, x, batch_size=None)
    assert not model.training  # BatchNorm's running statistics and no dropout: the same answer twice
    np.testing.assert_allclose(torch_inference.torch_logits(model, x, batch_size=3), whole, atol=1e-5)
    with pytest.raises(ValueError, match=r"float32\[N, 3, h, w\]"):
        torch_inference.torch_logits(model, x.astype(np.float64))
