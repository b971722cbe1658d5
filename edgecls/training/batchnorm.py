"""BatchNorm on small data: the running statistics evaluation uses, and keeping pretrained ones.

In training mode BatchNorm normalises with each batch's statistics; evaluation and the exported model use the
running statistics, an exponential moving average (PyTorch momentum 0.1) that starts at mean 0, variance 1.
On a small folder with few steps per epoch (benchmarks/transfer/small_gray_folder.py makes one: 140 training
images, batch 64, 3 steps per epoch) that average has not forgotten its start when validation begins: a layer
whose inputs have variance v < 1 needs n steps with 0.9^n < v before the initial 1 stops dominating (v = 1e-3:
66 steps, 22 epochs there). Until then evaluation divides such layers by a variance far too large, the logits
collapse onto one class and validation sits at the majority-class rate while training accuracy climbs.
Re-estimating the statistics with the current weights before validation ("precise BN", Wu & Johnson 2021,
"Rethinking 'Batch' in BatchNorm") removes the dependence on the number of steps. Fine-tuning a pretrained
network keeps the pretrained statistics instead (frozen BN).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

BatchNormTypes = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def batchnorm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, BatchNormTypes)]


def freeze_batchnorm_statistics(module: nn.Module) -> None:
    """Put every BatchNorm of ``module`` in eval mode: it normalises with (and keeps) its running statistics.

    Call after ``model.train()``, which sets every layer back to training mode. The affine weight and bias
    still train.
    """
    for bn in batchnorm_layers(module):
        bn.eval()


@torch.no_grad()
def reestimate_batchnorm_statistics(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Recompute every BatchNorm's running mean/var with the current weights; -> images used.

    ``batches``: float32[B, 3, H, W] inputs (un-augmented training images). The statistics become the plain
    average over the batches (momentum None), not an EMA. Only BatchNorm layers run in training mode, so
    dropout draws no random numbers and a resumed run stays identical to an uninterrupted one.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    was_training = model.training
    model.eval()
    momenta = []
    saved = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in layers]  # type: ignore[union-attr]
    for bn in layers:
        momenta.append(bn.momentum)
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    seen = 0
    try:
        for x in batches:
            if len(x) < 2:  # batch statistics of one image are degenerate
                continue
            model(x.contiguous(memory_format=torch.channels_last))
            seen += len(x)
    finally:
        for bn, momentum, (mean, var) in zip(layers, momenta, saved, strict=True):
            bn.momentum = momentum
            if seen == 0:  # nothing measured: keep the statistics there were
                bn.running_mean.copy_(mean)  # type: ignore[union-attr]
                bn.running_var.copy_(var)  # type: ignore[union-attr]
        model.train(was_training)
    return seen
