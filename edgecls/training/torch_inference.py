"""The one torch forward pass: preprocessed images -> logits, for everything that runs a torch model on images.

Validation and the test pass of a run (evaluate_run), ``edgecls eval`` on a checkpoint (evaluation/predictors),
export's parity check and golden outputs (export/parity, export/golden) and the bench's PyTorch-eager baseline
(eager_runner) all call :func:`torch_logits`, so they cannot disagree on what a checkpoint computes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: Images per forward pass when the caller does not batch itself.
DEFAULT_BATCH = 64


def _input_memory_format(model: nn.Module) -> torch.memory_format:
    """channels_last when the model's first convolution weight is (training converts the model: oneDNN's CPU
    convolutions run fastest in NHWC), so the input needs no layout conversion; else the default NCHW."""
    for p in model.parameters():
        if p.dim() == 4:
            nhwc = p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
            return torch.channels_last if nhwc else torch.contiguous_format
    return torch.contiguous_format


def torch_logits(model: nn.Module, inputs: np.ndarray, batch_size: int | None = DEFAULT_BATCH) -> np.ndarray:
    """float32[N, 3, h, w] preprocessed images -> float32[N, C] logits.

    The model is put in eval mode (BatchNorm's running statistics, no dropout) and run without autograd
    (``torch.inference_mode``), ``batch_size`` images per forward pass (None: all ``N`` in one).
    """
    if inputs.dtype != np.float32 or inputs.ndim != 4:
        raise ValueError(f"torch_logits takes float32[N, 3, h, w], got {inputs.dtype}{list(inputs.shape)}")
    model.eval()
    step = batch_size or max(len(inputs), 1)
    memory_format = _input_memory_format(model)
    outs: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(inputs), step):
            x = torch.from_numpy(np.ascontiguousarray(inputs[start : start + step]))
            outs.append(model(x.contiguous(memory_format=memory_format)).float().numpy())
    if not outs:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(outs)
