"""BatchNorm on small data: the running statistics evaluation uses, and keeping pretrained ones.

In training mode BatchNorm normalises with each batch's statistics; evaluation and the exported model use the
running statistics, an exponential moving average (PyTorch momentum 0.1) of batch statistics taken while the
weights were changing. With a few hundred images there are only a few steps per epoch, and early on the
weights move a lot per step, so the average mixes statistics of networks that no longer exist: the model
validates on statistics that do not describe its own activations, and its outputs can collapse onto one class
(validation at chance while training accuracy is high). Re-estimating the statistics with the current
weights before validation ("precise BN", Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm") removes the
lag. Fine-tuning a pretrained network on a few hundred photos keeps the pretrained statistics instead
(frozen BN), because small batches of a narrow domain are a poor estimate of them.
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
