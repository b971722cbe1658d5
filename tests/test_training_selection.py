"""Which epoch a run keeps and when it stops (issue 25): validation-loss tie-breaks on a saturated accuracy,
fine-tuning's minimum epochs before early stopping, the 1-based best epoch in summary.json, and the
micro-batches that bound training memory."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures_runtime import REPO, _cli_env
from torch import nn

from edgecls.training.config import FINETUNE_MIN_EPOCHS, TrainConfig
from edgecls.training.train import is_better, micro_batch_size, train_epoch


@pytest.mark.slow  # trains in a subprocess: 53 s at load 5-13
def test_summary_best_epoch_is_the_log_epoch_marked_best(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "edgecls", "train", "builtin:shapes", "--arch", "cnn", "--input-size", "32",
         "--epochs", "3", "--out", str(run)],
        capture_output=True, text=True, timeout=600, env=_cli_env(), cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    marked = [int(m.group(1)) for m in re.finditer(r"epoch +(\d+)/3 .*\*best", proc.stderr)]
    summary = json.loads((run / "summary.json").read_text())
    assert marked and summary["best_epoch"] == marked[-1]  # 1-based, as the log
    assert f"(best epoch {marked[-1]})" in proc.stderr
    history = json.loads((run / "history.json").read_text())
    best = history[summary["best_epoch"] - 1]
    assert best["val_acc"] == summary["val_top1"] == max(h["val_acc"] for h in history)


def test_saturated_accuracy_ties_go_to_the_lower_validation_loss() -> None:
    assert is_better(1.0, 0.40, best_acc=1.0, best_loss=0.55)  # same 100%, more confidently right: better
    assert not is_better(1.0, 0.60, best_acc=1.0, best_loss=0.55)  # same 100%, worse loss: not a new best
    assert is_better(0.9, 2.0, best_acc=0.8, best_loss=0.1)  # accuracy first
    assert not is_better(0.8, 0.1, best_acc=0.9, best_loss=2.0)
    assert is_better(1.0, 0.55, best_acc=1.0, best_loss=0.55)  # an exact tie: the later epoch
    assert is_better(1.0, 0.3, best_acc=-1.0, best_loss=float("inf"))  # the first epoch


def test_fine_tuning_waits_min_epochs_before_early_stopping() -> None:
    assert TrainConfig(data="d", pretrained=True).resolved_min_epochs() == FINETUNE_MIN_EPOCHS
    assert TrainConfig(data="d", pretrained=True, epochs=6).resolved_min_epochs() == 6
    assert TrainConfig(data="d").resolved_min_epochs() == 0
    assert TrainConfig(data="d", pretrained=True, min_epochs=3).to_dict()["min_epochs"] == 3


def test_micro_batches_give_the_full_batch_gradient() -> None:
    """Batch 10 in chunks of 4/3/3 (BatchNorm-free network): the same step as one pass, within float error."""
    assert micro_batch_size(64, 224) == 16 and micro_batch_size(64, 32) == 64 and micro_batch_size(8, 224) == 8
    torch.manual_seed(0)
    x, y = torch.randn(10, 3, 8, 8), torch.randint(0, 3, (10,))
    weights = []
    for micro in (None, 4):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        start = torch.cat([p.detach().flatten() for p in model.parameters()])
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _s: 1.0)
        stats = train_epoch(model, [(x, y, [])], opt, sched, nn.CrossEntropyLoss(), None, set(),
                            lambda *_a: None, micro)  # fmt: skip
        weights.append((torch.cat([p.detach().flatten() for p in model.parameters()]), stats))
    (w_full, s_full), (w_micro, s_micro) = weights
    assert not torch.allclose(w_full, start, atol=1e-4)  # the step did move the weights
    assert torch.allclose(w_full, w_micro, atol=1e-6) and abs(s_full.loss - s_micro.loss) < 1e-6
    assert s_full.n == s_micro.n == 10
