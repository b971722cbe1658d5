"""Numeric parity between PyTorch and ONNX, on real images through the runtime's preprocessing.

Every export runs this: ``preprocess_batch`` (the device's code) builds float32[N, 3, h, w] inputs once,
PyTorch and onnxruntime each produce float32[N, C] logits, and the export fails when they differ by more
than the tolerance or disagree on any top-1 class.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from torch import nn

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.inference.preprocess import preprocess_batch
from edgecls.runtime.inference.scores import top1_agreement
from edgecls.training import torch_inference

#: fp32 ONNX vs PyTorch: graph optimisations reorder float sums, nothing more is allowed.
FP32_ATOL = 1e-4


class ParityError(EdgeclsError):
    """The ONNX model does not compute what the PyTorch model computes."""


@dataclass
class ParityResult:
    variant: str
    images: int
    max_abs_diff: float
    top1_mismatches: int
    atol: float | None  # None: only top-1 agreement is required (fp16)
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        limit = f" (limit {self.atol:g})" if self.atol is not None else ""
        return (
            f"{self.variant}: max |logit diff| {self.max_abs_diff:.3g}{limit}, "
            f"top-1 differs on {self.top1_mismatches}/{self.images} images"
        )


def onnx_logits(
    path: str | os.PathLike[str], inputs: np.ndarray, batch_size: int = 64, threads: int | None = None
) -> np.ndarray:
    """float32[N, 3, h, w] -> float32[N, C] on an onnxruntime CPU session (``create_session``)."""
    from edgecls.runtime.inference.batched_inference import session_outputs
    from edgecls.runtime.providers.session import create_session

    sess, _ = create_session(path, provider="cpu", threads=threads)
    return session_outputs(sess, inputs, batch_size)


def check_parity(
    model: nn.Module,
    onnx_path: str | os.PathLike[str],
    images: Sequence[np.ndarray],
    contract: ModelContract,
    variant: str = "fp32",
    atol: float | None = FP32_ATOL,
) -> ParityResult:
    """Compare PyTorch and onnxruntime on ``images`` (uint8[H, W, 3] BGR, any sizes)."""
    if not images:
        raise ParityError("parity check needs at least one readable image")
    inputs = preprocess_batch(images, contract)
    expected = torch_inference.torch_logits(model, inputs)
    got = onnx_logits(onnx_path, inputs)
    if got.shape != expected.shape:
        raise ParityError(f"{onnx_path}: output shape {got.shape} differs from PyTorch's {expected.shape}")
    max_diff = float(np.max(np.abs(got - expected)))
    mismatches = round(len(got) * (1.0 - top1_agreement(got, expected)))  # rows whose top-1 class differs
    passed = mismatches == 0 and (atol is None or max_diff <= atol)
    return ParityResult(variant, len(images), max_diff, mismatches, atol, passed)
