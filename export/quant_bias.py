"""Empirical bias correction of an int8 QDQ graph (Nagel et al. 2019, "Data-Free Quantization Through
Weight Equalization and Bias Correction", section 4.2, the empirical variant).

Quantization error is not zero-mean per output channel: rounded weights and clipped activations shift each
channel's expected output, and depthwise convolutions (few weights per channel) shift most. For every Conv/Gemm
with a bias, the per-channel mean of its output is measured on calibration images in the float model and in
the quantized model, and the difference is added to the quantized bias:

    b_c <- b_c + E[y_c(float)] - E[y_c(int8)]          (means over images and spatial positions)

The int8 model is run with its conv outputs exposed as graph outputs, which keeps onnxruntime from fusing the
QDQ pattern: the means are those of the exact ("fake-quant") products, the same on every CPU. Each pass
corrects all layers at once; a second pass corrects what the first pass changed downstream.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

BATCH = 8
CORRECTED_OPS = ("Conv", "Gemm")


def _with_outputs(model: onnx.ModelProto, names: Iterable[str]) -> bytes:
    """Serialized copy of ``model`` whose graph also outputs the tensors ``names`` (type float, any shape)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    existing = {o.name for o in m.graph.output}
    for name in names:
        if name not in existing:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return m.SerializeToString()


def channel_means(model: onnx.ModelProto, tensors: list[str], inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel mean (axis 1, over images and positions) of each tensor in ``tensors`` on float32[N, 3, h, w]
    inputs, accumulated batch by batch so memory stays at one batch of activations."""
    import onnxruntime as ort
    from edgecls.runtime.session import session_options

    if not tensors:  # sess.run([]) would return every output
        return {}
    sess = ort.InferenceSession(
        _with_outputs(model, tensors), sess_options=session_options(), providers=["CPUExecutionProvider"]
    )
    input_name = sess.get_inputs()[0].name
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for i in range(0, len(inputs), BATCH):
        outs = sess.run(tensors, {input_name: inputs[i : i + BATCH]})
        for name, y in zip(tensors, outs, strict=True):
            y = y.astype(np.float64)
            axes = (0, *range(2, y.ndim))  # y: float[B, C] (Gemm) or float[B, C, H, W] (Conv)
            sums[name] = sums.get(name, 0.0) + y.sum(axis=axes)
            counts[name] = counts.get(name, 0) + y.size // y.shape[1]
    return {name: sums[name] / counts[name] for name in tensors}


def _bias_sites(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, onnx.NodeProto]]:
    """(compute node, DequantizeLinear of its int32 bias) for every Conv/Gemm whose bias is quantized."""
    producer = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    sites = []
    for node in model.graph.node:
        if node.op_type not in CORRECTED_OPS or len(node.input) < 3 or not node.input[2]:
            continue
        dq = producer.get(node.input[2])
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            continue
        if inits[dq.input[0]].data_type == onnx.TensorProto.INT32:
            sites.append((node, dq))
    return sites


def correct_biases(
    int8_path: str | os.PathLike[str],
    fp32_means: dict[str, np.ndarray],
    fp32_output_of: dict[str, str],
    inputs: np.ndarray,
    passes: int = 2,
) -> dict[str, float]:
    """Correct the int8 QDQ model at ``int8_path`` in place.

    ``fp32_means``: per-channel output means of the float model, keyed by its tensor names;
    ``fp32_output_of``: node name -> that node's output tensor in the float model (the QDQ graph renames
    outputs when it folds a Relu/Clip into the quantization range). Returns the mean |shift| per pass, in
    units of the channel means, for the report."""
    path = Path(int8_path)
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    sites = [(n, dq) for n, dq in _bias_sites(model) if fp32_output_of.get(n.name) in fp32_means]
    shifts: dict[str, float] = {}
    for p in range(passes):
        q_means = channel_means(model, [n.output[0] for n, _ in sites], inputs)
        moved = []
        for node, dq in sites:
            delta = fp32_means[fp32_output_of[node.name]] - q_means[node.output[0]]  # float[C]
            bias_init = inits[dq.input[0]]
            q_bias = numpy_helper.to_array(bias_init).astype(np.int64)
            scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float64)  # scalar or float[C]
            step = np.rint(delta / np.maximum(scale, 1e-30)).astype(np.int64)
            new = np.clip(q_bias + step, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
            bias_init.CopyFrom(numpy_helper.from_array(new.reshape(q_bias.shape), bias_init.name))
            moved.append(float(np.mean(np.abs(delta))))
        shifts[f"pass{p + 1}_mean_abs_shift"] = float(np.mean(moved)) if moved else 0.0
    onnx.save(model, str(path))
    shifts["layers"] = float(len(sites))
    return shifts
