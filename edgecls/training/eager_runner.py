"""The PyTorch eager runner behind ``edgecls bench``'s torch baseline: a training checkpoint run by torch itself.

The bench (torch-free, runtime/bench/baselines/torch_eager.py) finds the checkpoint and names this loader by its
import path; only the benchmark's measuring process imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from edgecls.runtime.bench.rows import LoadedRunner
from edgecls.training import torch_inference
from edgecls.training.checkpoint import load_checkpoint


def load_torch_eager(
    model: str, provider: str = "torch-cpu", threads: int | None = None, trust_checkpoint: bool = False, **_: Any
) -> LoadedRunner:
    """Rebuild the checkpoint's model; ``infer`` maps ``float32[N, 3, h, w]`` -> ``float32[N, C]`` logits.

    ``trust_checkpoint`` (bench ``--trust-checkpoint``) lets the checkpoint run code while it loads."""
    if threads:
        torch.set_num_threads(int(threads))
    ckpt = load_checkpoint(model, trust=trust_checkpoint)
    net = ckpt.build_model()
    size = sum(p.numel() * p.element_size() for p in net.parameters())
    size += sum(b.numel() * b.element_size() for b in net.buffers())

    def infer(batch: np.ndarray) -> np.ndarray:
        return torch_inference.torch_logits(net, batch, batch_size=None)  # the bench times the batch it gives

    h, w = ckpt.contract.input_size
    return LoadedRunner(
        infer=infer,
        input_shape=(None, 3, h, w),
        input_dtype="float32",
        providers_used=[f"torch {torch.__version__} CPU ({torch.get_num_threads()} threads)"],
        contract=ckpt.contract,
        size_bytes=size,
    )
