"""The training loop: cross-entropy + backprop, AdamW/SGD, warm-up + cosine, early stopping, resume, DDP.

Reproducibility: every random stream is a function of (seed, epoch): the sampler order, the augmentation
(per sample) and torch's global RNG (dropout). A run resumed from ``last.pt`` therefore continues exactly as
the uninterrupted run would have.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from edgecls.data.load import describe_split, load_data
from edgecls.runtime.errors import DataError
from edgecls.training.allocator import keep_freed_memory_for_reuse
from edgecls.training.batchnorm import reestimate_batchnorm_statistics
from edgecls.training.checkpoint import save_checkpoint
from edgecls.training.config import TrainConfig
from edgecls.training.distributed import DistContext, barrier, broadcast_flag, init_distributed, shutdown
from edgecls.training.evaluate_run import Logger, finish_run, predict_logits
from edgecls.training.finetune import lr_lambdas, optimizer_groups, set_training_mode
from edgecls.training.model_init import build_run_model, choose_model
from edgecls.training.progress import log_to_stderr, make_progress
from edgecls.training.run_contract import make_contract
from edgecls.training.run_dir import prepare_run_dir, removed_if_failed, write_history, write_json
from edgecls.training.torch_data import ContractDataset, collate_skipping_broken
from edgecls.training.training_state import TrainingState, restore_training_state

#: Pixels one forward/backward pass holds at most (16 images at 224 px). Larger batches are split into
#: micro-batches whose gradients add up to the batch's (gradient accumulation): the activations kept for the
#: backward pass grow with images x pixels, and EfficientNet-Lite0 at 224 px in training mode, batch 64 in one
#: pass, peaked at 6.5-8 GB RSS (issue 25) - over an 8 GB laptop. 32 px inputs are never split.
MICRO_BATCH_PIXELS = 16 * 224 * 224


def micro_batch_size(batch_size: int, input_size: int) -> int:
    """Images per forward/backward pass for ``batch_size`` images of ``input_size`` x ``input_size`` px."""
    return max(1, min(batch_size, MICRO_BATCH_PIXELS // (input_size * input_size)))


#: Training images whose un-augmented forward passes re-estimate BatchNorm's statistics before validation.
BN_REESTIMATE_IMAGES = 512


@dataclass
class EpochStats:
    loss: float
    acc: float
    n: int


def _optimizer(config: TrainConfig, model: nn.Module, head: str | None) -> torch.optim.Optimizer:
    groups = optimizer_groups(model, head, config.resolved_weight_decay())
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.resolved_lr(), momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.resolved_lr())  # TrainConfig admits adamw or sgd only


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    criterion: nn.Module,
    max_batches: int | None,
    broken: set[str],
    on_batch: Callable[[int, float, float], None],
    micro_batch: int | None = None,
) -> EpochStats:
    """One pass over ``loader`` (at most ``max_batches`` batches): one optimizer and scheduler step per batch.

    ``micro_batch``: images per forward/backward pass; a batch is split into chunks whose losses are weighted
    by their share of the batch, so the summed gradients are the batch's mean-loss gradient (exactly, except
    for BatchNorm layers in training mode, which normalise each chunk with its own statistics).
    """
    total_loss, correct, seen = 0.0, 0, 0
    for step, (x, y, bad) in enumerate(loader):
        broken.update(bad)
        if max_batches is not None and step >= max_batches:
            break
        if len(y) == 0:
            continue
        optimizer.zero_grad(set_to_none=True)
        # balanced chunks (33 images, micro 16 -> 17 + 16): none of 1 image, which training BatchNorm rejects
        chunks = math.ceil(len(y) / (micro_batch or len(y)))
        for xs, ys in zip(torch.tensor_split(x, chunks), torch.tensor_split(y, chunks), strict=True):
            out = model(xs.contiguous(memory_format=torch.channels_last))  # [b, C] logits
            loss = criterion(out, ys)
            (loss * (len(ys) / len(y))).backward()  # frees this chunk's activations before the next
            total_loss += loss.item() * len(ys)
            correct += int((out.argmax(1) == ys).sum())
        optimizer.step()
        scheduler.step()
        seen += len(y)
        on_batch(step, total_loss / seen, correct / seen)
    return EpochStats(total_loss / max(seen, 1), correct / max(seen, 1), seen)


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of float32[N, C] logits against int64[N] labels (NaN without images)."""
    if len(labels) == 0:
        return float("nan")
    return float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))


def is_better(val_acc: float, val_loss: float, best_acc: float, best_loss: float) -> bool:
    """Whether an epoch beats the best so far: higher validation accuracy, or the same accuracy at a lower
    (or equal: the later epoch trained longer at a lower learning rate) validation loss.

    The loss breaks ties because a small validation set saturates: at 8 images per class every fine-tuning
    epoch may score 100%, and accuracy alone can neither pick the checkpoint nor tell early stopping whether
    the model still improves. The loss keeps measuring how confidently right the model is.
    """
    if val_acc != best_acc:
        return val_acc > best_acc
    return not val_loss > best_loss  # NaN (no loss) counts as a tie, which the later epoch wins


def at_chance_while_fitting(best_val_acc: float, train_acc: float, val_labels: np.ndarray) -> bool:
    """True when validation has never beaten the majority-class rate (+2 points) while training accuracy is
    at least 90%: early stopping would ship a coin toss, so it waits (validation can leave chance late, e.g. on
    the small folder benchmarks/transfer/small_gray_folder.py makes, trained with ``--batchnorm train``)."""
    if len(val_labels) == 0:
        return False
    majority = float(np.bincount(val_labels).max()) / len(val_labels)
    return best_val_acc <= majority + 0.02 and train_acc >= 0.9


def train(
    config: TrainConfig, log: Logger | None = None, show_progress: bool = True, trust_checkpoint: bool = False
) -> Path:
    """Train per ``config``; returns the run directory (best.pt, last.pt, contract.json, curves.png, eval/).

    ``trust_checkpoint`` lets a resumed ``last.pt`` run code while it loads (``--trust-checkpoint``)."""
    ctx = init_distributed()
    log = log or log_to_stderr
    try:
        cleanup = removed_if_failed(Path(config.out), config.resume) if ctx.is_main else nullcontext()
        with cleanup:
            return _train(config, ctx, log if ctx.is_main else (lambda _m: None), show_progress and ctx.is_main,
                          trust_checkpoint)
    finally:
        shutdown(ctx)


def _train(config: TrainConfig, ctx: DistContext, log: Logger, show_progress: bool, trust_checkpoint: bool) -> Path:
    out = Path(config.out)
    if ctx.is_main:
        prepare_run_dir(out, config.resume)
    barrier(ctx)
    splits = load_data(
        config.data, seed=config.seed, val_fraction=config.val_fraction, test_fraction=config.test_fraction
    )
    if len(splits.train) == 0 or len(splits.val) == 0:
        raise DataError(f"{config.data}: the split left no training or validation images")
    choice = choose_model(config)  # the registry and the weights' spec are looked up once, here
    contract = make_contract(config, splits, choice)
    torch.manual_seed(config.seed)
    run_model = build_run_model(
        config, contract.num_classes, contract.input_size[0], load_weights=not config.resume, choice=choice
    )
    model = run_model.model
    head = run_model.head if config.fine_tuning else None
    contract = contract.with_provenance(arch=run_model.arch, arch_kwargs=run_model.arch_kwargs)
    if run_model.pretrained:
        contract = contract.with_provenance(pretrained=run_model.pretrained)
    # NHWC (channels_last) is the layout oneDNN's CPU convolutions run fastest (PyTorch's "Channels Last Memory
    # Format" tutorial). The weights stay the same values; export rebuilds the model from the state dict, so the
    # ONNX graph does not depend on this.
    model = model.to(memory_format=torch.channels_last)
    keep_freed_memory_for_reuse()
    optimizer = _optimizer(config, model, head)
    train_set = ContractDataset(splits.train, contract, config.resolved_augment(), seed=config.seed)
    steps_per_epoch = math.ceil(len(train_set) / ctx.world_size / config.batch_size)
    if config.max_train_batches is not None:
        steps_per_epoch = min(steps_per_epoch, config.max_train_batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambdas(config, steps_per_epoch))
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    state = TrainingState()
    if config.resume:
        state = restore_training_state(out / "last.pt", model, optimizer, scheduler, trust=trust_checkpoint)
        if state.pretrained is not None:
            contract = contract.with_provenance(pretrained=state.pretrained)
        log(f"resuming {out} at epoch {state.start_epoch + 1}/{config.epochs} "
            f"(best val acc {100 * state.best_acc:.2f}%)")
    start_epoch, best_acc, best_loss = state.start_epoch, state.best_acc, state.best_loss
    stale, history = state.stale, state.history

    ddp_model: nn.Module = model
    if ctx.enabled:
        # The head warm-up freezes the backbone: DDP must not wait for gradients those parameters never get.
        ddp_model = nn.parallel.DistributedDataParallel(model, find_unused_parameters=head is not None)
    sampler_ddp = DistributedSampler(train_set, shuffle=True, seed=config.seed) if ctx.enabled else None
    eval_loader = DataLoader(
        ContractDataset(splits.val, contract),
        batch_size=256,
        shuffle=False,
        num_workers=config.workers,
        collate_fn=collate_skipping_broken,
    )
    # A seeded random sample in random order: batches mix classes as training batches do (class-sorted batches
    # would underestimate the variance BatchNorm must normalise).
    bn_sample = np.random.default_rng(config.seed).permutation(len(splits.train))[:BN_REESTIMATE_IMAGES]
    bn_loader = DataLoader(
        ContractDataset(splits.train.subset([int(i) for i in bn_sample]), contract),
        batch_size=min(config.batch_size, 64),
        shuffle=False,
        num_workers=config.workers,
        collate_fn=collate_skipping_broken,
    )
    broken: set[str] = set()
    if ctx.is_main:
        write_json(out / "config.json", config.to_dict())
        write_json(out / "contract.json", contract.to_dict())
        write_json(out / "split.json", splits.info)
        log(
            f"training {config.arch} on {config.data}: {len(splits.train)} train / {len(splits.val)} val / "
            f"{len(splits.test)} test images, {contract.num_classes} classes, {contract.input_size[0]} px; "
            f"{describe_split(splits.info)}" + (f"; {ctx.world_size} processes (DDP)" if ctx.enabled else "")
        )
        if run_model.pretrained:
            log(
                f"fine-tuning from {run_model.pretrained['weights']} (sha256 {run_model.pretrained['sha256'][:12]}): "
                f"head only for {config.resolved_head_epochs():g} epoch(s), then the backbone at "
                f"{config.backbone_lr_scale:g} x the learning rate; BatchNorm {config.resolved_batchnorm()}"
            )

    progress = make_progress(show_progress)
    task = progress.add_task("train", total=steps_per_epoch, loss=0.0, acc=0.0) if progress else None
    if progress:
        progress.start()
    try:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            torch.manual_seed(config.seed * 100_003 + epoch)  # dropout stream: a function of (seed, epoch)
            train_set.epoch = epoch
            if sampler_ddp is not None:
                sampler_ddp.set_epoch(epoch)
                sampler: Any = sampler_ddp
            else:
                sampler = RandomSampler(
                    train_set, generator=torch.Generator().manual_seed(config.seed * 7919 + epoch)
                )
            loader = DataLoader(
                train_set,
                batch_size=config.batch_size,
                sampler=sampler,
                num_workers=config.workers,
                collate_fn=collate_skipping_broken,
                drop_last=len(train_set) % config.batch_size == 1,
            )  # BN needs > 1 sample
            if progress:
                progress.reset(task, total=steps_per_epoch, description=f"epoch {epoch + 1}/{config.epochs}")

            def on_batch(step: int, loss: float, acc: float) -> None:
                if progress:
                    progress.update(task, completed=step + 1, loss=loss, acc=100 * acc)

            set_training_mode(model, head, config, epoch)
            stats = train_epoch(
                ddp_model, loader, optimizer, scheduler, criterion, config.max_train_batches, broken, on_batch,
                micro_batch_size(config.batch_size, contract.input_size[0]),
            )
            stop = False
            if ctx.is_main:
                if config.resolved_batchnorm() == "reestimate":
                    reestimate_batchnorm_statistics(model, (x for x, _y, _bad in bn_loader))
                logits, labels = predict_logits(model, eval_loader, broken)
                val_acc = float((logits.argmax(1) == labels).mean()) if len(labels) else 0.0
                row = {
                    "epoch": epoch,
                    "train_loss": stats.loss,
                    "train_acc": stats.acc,
                    "val_loss": _cross_entropy(logits, labels),
                    "val_acc": val_acc,
                    "lr": optimizer.param_groups[-1]["lr"],  # the head's when fine-tuning
                    "seconds": round(time.perf_counter() - t0, 2),
                }
                history.append(row)
                improved = is_better(val_acc, row["val_loss"], best_acc, best_loss)
                if improved:
                    best_acc, best_loss, stale = val_acc, row["val_loss"], 0
                else:
                    stale += 1
                payload = {
                    "arch": run_model.arch,
                    "arch_kwargs": run_model.arch_kwargs,
                    "contract": contract.to_dict(),
                    "train_config": config.to_dict(),
                    "model_state": model.state_dict(),
                    "epoch": epoch,
                    "best_metric": best_acc,
                    "best_val_loss": best_loss,
                    "stale_epochs": stale,
                    "metrics": row,
                    "history": history,
                    "optimizer_state": optimizer.state_dict(),
                    "scheduler_state": scheduler.state_dict(),
                    "data": {
                        "spec": config.data,
                        "seed": config.seed,
                        "val_fraction": config.val_fraction,
                        "test_fraction": config.test_fraction,
                    },
                }
                if improved:
                    save_checkpoint(
                        out / "best.pt", {**payload, "optimizer_state": None, "scheduler_state": None}
                    )
                save_checkpoint(out / "last.pt", payload)  # last: the resume point, written after best
                write_history(out, history)
                msg = (
                    f"epoch {epoch + 1:>3}/{config.epochs}  loss {stats.loss:.4f}  train {100 * stats.acc:5.2f}%  "
                    f"val {100 * val_acc:5.2f}%  ({row['seconds']:.1f}s){'  *best' if improved else ''}"
                )
                if progress:
                    progress.console.print(msg)
                else:
                    log(msg)
                stop = stale >= config.patience and epoch + 1 >= config.resolved_min_epochs()
                if stop and at_chance_while_fitting(best_acc, stats.acc, labels):
                    stop, stale = False, 0
                    log(
                        f"not stopping early: the best validation accuracy {100 * best_acc:.1f}% is no better than "
                        f"always answering the most frequent class while training accuracy is "
                        f"{100 * stats.acc:.1f}%; a model that guesses is not one to keep, training goes on"
                    )
                if stop:
                    log(f"early stop: no validation improvement for {config.patience} epochs")
            if broadcast_flag(ctx, stop):
                break
    finally:
        if progress:
            progress.stop()
    if ctx.is_main:
        finish_run(out, contract, splits, history, broken, log)
    barrier(ctx)
    return out
