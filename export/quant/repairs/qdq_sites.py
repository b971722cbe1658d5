"""Where a QDQ graph's quantized layers are, and how to read them: the Conv/Gemm nodes whose weight and int32
bias come through DequantizeLinear of initializers, their float values, and a copy of a graph that also
outputs inner tensors. Shared by the passes that edit those initializers in place (``repairs.bias_correction``,
``repairs.reconstruct``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import numpy_helper

SITE_OPS = ("Conv", "Gemm")


def with_outputs(model: onnx.ModelProto, names: Iterable[str]) -> bytes:
    """Serialized copy of ``model`` whose graph also outputs the tensors ``names`` (type float, any shape)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    existing = {o.name for o in m.graph.output}
    for name in names:
        if name not in existing:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return m.SerializeToString()


def node_attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def quantized_sites(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, onnx.NodeProto, onnx.NodeProto]]:
    """(node, DequantizeLinear of its weight, DequantizeLinear of its int32 bias) per quantized Conv/Gemm."""
    producer = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    sites = []
    for node in model.graph.node:
        if node.op_type not in SITE_OPS or len(node.input) < 3 or not node.input[2]:
            continue
        if node.op_type == "Gemm" and (node_attrs(node).get("transA", 0) or not node_attrs(node).get("transB", 0)):
            continue  # only y = x W^T + b (what torch's Linear exports)
        wdq, bdq = producer.get(node.input[1]), producer.get(node.input[2])
        if any(d is None or d.op_type != "DequantizeLinear" or d.input[0] not in inits for d in (wdq, bdq)):
            continue
        if inits[bdq.input[0]].data_type == onnx.TensorProto.INT32:
            sites.append((node, wdq, bdq))  # type: ignore[arg-type]
    return sites


def channel_shape(scale: np.ndarray, ndim: int) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel (axis 0) or per-tensor scale over a tensor of ``ndim`` dims."""
    return (-1,) + (1,) * (ndim - 1) if np.ndim(scale) == 1 else ()


def dequantize(inits: dict[str, onnx.TensorProto], dq: onnx.NodeProto) -> np.ndarray:
    """The float value of a DequantizeLinear over initializers (per-tensor or per-channel along axis 0)."""
    q = numpy_helper.to_array(inits[dq.input[0]]).astype(np.float64)
    scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float64)
    zp = numpy_helper.to_array(inits[dq.input[2]]).astype(np.float64) if len(dq.input) > 2 else 0.0
    shape = channel_shape(scale, q.ndim)
    return (q - np.reshape(zp, shape)) * np.reshape(scale, shape)
