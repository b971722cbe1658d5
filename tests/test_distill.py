"""int8 learned from the float model on unlabelled images (distillation, the library only: its command-line flags
are removed in this release, and the library goes with it): the loop lowers the fake-int8 student's KL to its
teacher, reads no labels and keeps its time budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_quant import skewed_copy

from edgecls.training.distill import DistillConfig, distill
from edgecls.training.student_graph import prepare_student

FAST = {"max_steps": 60, "time_budget": 1e6, "batch_size": 16, "lr": 1e-4, "recalibrate_every": 20}


@pytest.fixture(scope="module")
def skewed(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, np.ndarray, Path]:
    """(float model, float32[64, 3, 32, 32] calibration inputs, run dir) of the skewed-activation SimpleCNN run
    test_qat builds: one channel per block 100x larger, so per-tensor int8 ranges crush the others."""
    from edgecls.export.quant.image_sets import images_from_run
    from edgecls.export.run_data import data_ref_of
    from edgecls.training.checkpoint import load_checkpoint

    run = skewed_copy(tiny_run, tmp_path_factory.mktemp("distill") / "run", 100.0)
    ckpt = load_checkpoint(run / "best.pt")
    ref = data_ref_of(ckpt.raw, ckpt.path)
    assert ref is not None
    images = images_from_run(ref, "train", ckpt.contract, 64)
    return ckpt.build_model().eval(), images.inputs(ckpt.contract), run


def test_student_rewrite_keeps_the_function_and_exposes_every_layer(skewed):
    model, x, _ = skewed
    student, folded, fused = prepare_student(model, torch.from_numpy(x[:4]))
    assert folded == 6 and fused == 7  # 6 conv-BN pairs; 6 conv->ReLU and the hidden linear->ReLU
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in student.modules())
    with torch.no_grad():
        torch.testing.assert_close(student(torch.from_numpy(x)), model(torch.from_numpy(x)), atol=1e-4, rtol=1e-4)


@pytest.mark.slow  # a distillation loop: 21 s at load 5-13
def test_distillation_lowers_the_kl_of_the_fake_int8_student(skewed):
    model, x, _ = skewed
    before = [p.detach().clone() for p in model.parameters()]
    result = distill(model, x, DistillConfig(**FAST), log=lambda _m: None)
    assert result.steps == 60 and result.stopped_by == "max steps"
    assert result.after["kl"] < 0.7 * result.before["kl"], (result.before, result.after)
    assert result.after["agreement"] >= result.before["agreement"]
    for p, q in zip(before, model.parameters(), strict=True):  # the teacher is left as it was
        assert torch.equal(p, q)


@pytest.mark.slow  # a distillation loop: 7 s at load 5-13
def test_no_label_reaches_the_loop(skewed, tiny_run):
    """The pipeline passes images only: wrong labels, or none, give bit-identical learned weights."""
    from edgecls.export.quant.image_sets import ImageList, images_from_run
    from edgecls.export.run_data import data_ref_of
    from edgecls.training.checkpoint import load_checkpoint

    model, _, run = skewed
    ckpt = load_checkpoint(run / "best.pt")
    ref = data_ref_of(ckpt.raw, ckpt.path)
    assert ref is not None
    images = images_from_run(ref, "train", ckpt.contract, 48)
    assert images.labels is not None
    wrong = ImageList(images.source, images.images, (images.labels + 1) % len(ckpt.contract.labels), [])
    absent = ImageList(images.source, images.images, None, [])
    config = DistillConfig(**{**FAST, "max_steps": 10})
    weights = []
    for imgs in (images, wrong, absent):
        learned = distill(model, imgs.inputs(ckpt.contract), config, log=lambda _m: None).model
        weights.append([p.detach() for p in learned.parameters()])
    for other in weights[1:]:
        for a, b in zip(weights[0], other, strict=True):
            assert torch.equal(a, b)


@pytest.mark.slow  # a distillation loop that runs out its 3 s budget
def test_the_time_budget_is_honoured(skewed):
    model, x, _ = skewed
    result = distill(model, x, DistillConfig(**{**FAST, "max_steps": 10**6, "time_budget": 3.0}), log=lambda _m: None)
    assert result.stopped_by == "time budget" and 0 < result.steps < 10**6
    # no step starts after the budget: at most the last one ends past it (however loaded the box)
    assert result.loop_seconds <= 3.0 + result.loop_seconds / result.steps, result.to_dict()


@pytest.mark.parametrize(
    ("mode", "met", "allow", "images", "runs"),
    [
        ("auto", False, False, 256, True),  # post-training missed: learn
        ("auto", True, False, 256, False),  # within budget: nothing to learn
        ("auto", False, True, 256, False),  # --allow-over-budget accepts the miss
        ("auto", False, False, 20, False),  # too few images to learn a domain from
        ("on", True, True, 20, True),  # forced
        ("off", False, False, 256, False),
    ],
)
def test_when_int8_is_learned(mode, met, allow, images, runs):
    from types import SimpleNamespace

    from edgecls.export.quant.distill_export import DistillOptions, should_distill
    from edgecls.export.quant.options import QuantizeOptions

    ptq = SimpleNamespace(budget_met=met)
    why = should_distill(ptq, DistillOptions(mode=mode), QuantizeOptions(allow_over_budget=allow), images)  # type: ignore[arg-type]
    assert bool(why) is runs
