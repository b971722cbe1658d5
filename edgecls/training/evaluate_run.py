"""Evaluation inside a training run: logits over a loader (validation each epoch), and the final test pass.

``finish_run`` evaluates the best checkpoint on the held-out test split, writes eval/metrics.json, the
confusion matrix and training curves, and puts the test metrics into the contract (checkpoint and
contract.json) so that export carries them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from edgecls.data.load import DataSplits
from edgecls.evaluation.metrics import classification_metrics
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.training import torch_inference
from edgecls.training.checkpoint import load_checkpoint, save_checkpoint
from edgecls.training.run_dir import write_json
from edgecls.training.torch_data import ContractDataset, collate_skipping_broken

Logger = Callable[[str], None]


def predict_logits(model: nn.Module, loader: DataLoader, broken: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """-> (float32[N, C] logits, int64[N] labels) over the loader, skipping broken files (model left in eval)."""
    logits, labels = [], []
    for x, y, bad in loader:
        broken.update(bad)
        if len(y):
            logits.append(torch_inference.torch_logits(model, x.numpy(), batch_size=None))  # the loader batches
            labels.append(y.numpy())
    if not logits:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(logits), np.concatenate(labels)


def finish_run(
    out: Path,
    contract: ModelContract,
    splits: DataSplits,
    history: list[dict[str, Any]],
    broken: set[str],
    log: Logger,
) -> None:
    """Evaluate the best checkpoint on the test split, write plots and put the metrics into the contract."""
    from edgecls.evaluation.plots import plot_confusion, plot_training_curves

    best = load_checkpoint(out / "best.pt")
    model = best.build_model().to(memory_format=torch.channels_last)
    test_loader = DataLoader(
        ContractDataset(splits.test, contract), batch_size=256, collate_fn=collate_skipping_broken
    )
    logits, labels = predict_logits(model, test_loader, broken)
    metrics = classification_metrics(logits, labels, contract.labels)
    summary = {
        "test_top1": metrics.top1,
        "test_top5": metrics.top5,
        "val_top1": best.raw["best_metric"],
        "best_epoch": int(best.raw["epoch"]) + 1,  # 1-based, as the log's "epoch 3/30"
        "epochs_run": len(history),
        "test_images": metrics.n,
        "skipped_images": len(broken),
    }
    final_contract = contract.with_provenance(metrics=summary)
    save_checkpoint(
        out / "best.pt",
        {
            **{k: v for k, v in best.raw.items() if k not in ("format", "format_version")},
            "contract": final_contract.to_dict(),
        },
    )
    write_json(out / "contract.json", final_contract.to_dict())
    (out / "eval").mkdir(exist_ok=True)
    write_json(out / "eval" / "metrics.json", metrics.to_dict())
    plot_confusion(
        metrics.confusion,
        contract.labels,
        out / "eval" / "confusion.png",
        title=f"Test confusion, top-1 {100 * metrics.top1:.2f}%",
    )
    if history:
        plot_training_curves(history, out / "curves.png")
    write_json(out / "summary.json", summary)
    for name in sorted(broken):
        log(f"warning: skipped unreadable image: {name}")
    if broken:
        log(f"warning: {len(broken)} unreadable image(s) skipped")
    log(
        f"test top-1 {100 * metrics.top1:.2f}% on {metrics.n} images (best epoch {summary['best_epoch']}); "
        f"run saved in {out}"
    )
