"""Inputs -> outputs in batches: the one loop that runs ``float32[N, 3, h, w]`` through a model.

Everything that needs a model's outputs for many preprocessed inputs comes through here: the Classifier,
the bench (its agreement check and end-to-end pass), export's parity check and the int8 search (each trial's
accuracy, the per-node sensitivity ranking). Not here: the int8 steps that fetch intermediate tensors
(activation statistics, bias correction), which read many outputs per call.
A model with a fixed batch dimension gets exactly that many inputs per call (the last call padded by
repeating the last input, the padded rows dropped); a dynamic-batch model gets ``batch_size`` per call.
Outputs come back as ``float32[N, C]``. Torch-free: part of the edge runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: ``float[B, 3, h, w]`` -> ``float[B, C]``: one call of a model (a session's run, OpenCV DNN, torch).
Infer = Callable[[np.ndarray], np.ndarray]

#: onnxruntime input types -> numpy dtype names.
ORT_INPUT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
}


def session_infer(session: Any) -> Infer:
    """One call of an onnxruntime ``InferenceSession`` (or OpenVINOSession): its first input -> first output."""
    feed, out = session.get_inputs()[0].name, session.get_outputs()[0].name

    def infer(batch: np.ndarray) -> np.ndarray:
        return session.run([out], {feed: batch})[0]

    return infer


def session_input_dtype(session: Any) -> str:
    """The numpy dtype name of the session's first input (float16 for fp16-input models)."""
    return ORT_INPUT_DTYPES.get(session.get_inputs()[0].type, "float32")


def fixed_batch_of(shape: tuple[Any, ...] | list[Any]) -> int | None:
    """The batch size an input shape fixes, or None when its batch dimension is dynamic (a name, None, -1)."""
    first = shape[0] if len(shape) else None
    return first if isinstance(first, int) and first > 0 else None


def infer_in_batches(
    infer: Infer, x: np.ndarray, batch_size: int, pad: bool = False, dtype: str | None = None
) -> np.ndarray:
    """``infer`` over ``float[N, 3, h, w]`` in calls of ``batch_size`` -> ``float32[N, C]``.

    ``pad``: every call gets exactly ``batch_size`` inputs (fixed-batch models); ``dtype``: the model's input
    type (inputs are cast once per call, without a copy when they already have it).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    outs = []
    for start in range(0, len(x), batch_size):
        part = x[start : start + batch_size]
        n = len(part)
        if pad and n < batch_size:
            part = np.concatenate([part, np.repeat(part[-1:], batch_size - n, axis=0)])
        if dtype is not None:
            part = np.ascontiguousarray(part, dtype=dtype)
        outs.append(np.asarray(infer(part), dtype=np.float32)[:n])
    if not outs:
        raise ValueError("no inputs to run")
    return np.concatenate(outs)


def session_outputs(session: Any, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``float32[N, 3, h, w]`` -> ``float32[N, C]`` through a session; a fixed-batch model gets its own size."""
    fixed = fixed_batch_of(session.get_inputs()[0].shape)
    return infer_in_batches(
        session_infer(session), x, fixed or batch_size, pad=fixed is not None, dtype=session_input_dtype(session)
    )
