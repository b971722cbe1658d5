"""What a written int8 graph really is: which compute nodes run in float, and how much of it onnxruntime
fuses into int8 kernels after session optimisation.

A QDQ file says what *may* run in int8; onnxruntime's CPU provider turns DequantizeLinear -> Conv ->
QuantizeLinear into one QLinearConv only when the pattern is intact (a QuantizeLinear placed after a Relu6/Clip,
or a tensor also read in float, leaves a float Conv between DequantizeLinear nodes). The fused graph is read
from the file onnxruntime writes with ``SessionOptions.optimized_model_filepath``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import onnx

#: Ops whose float fallback can change accuracy (compute ops); data-movement ops follow their neighbours.
SENSITIVE_OPS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "Gemm",
        "MatMul",
        "Add",
        "Mul",
        "AveragePool",
        "GlobalAveragePool",
        "Concat",
        "Sigmoid",
        "HardSwish",
        "HardSigmoid",
    }
)
#: Ops whose second input is a weight tensor (dequantized from int8 when the op is quantized).
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
#: Weighted compute ops after onnxruntime's fusions: the work int8 is for.
CONV_OPS = frozenset({"Conv", "FusedConv", "ConvTranspose", "Gemm", "MatMul", "FusedGemm", "FusedMatMul"})
#: onnxruntime's fused int8 kernels for those ops.
INT8_CONV_OPS = frozenset({"QLinearConv", "QGemm", "QLinearMatMul", "ConvInteger", "MatMulInteger"})


def float_compute_nodes(int8_path: str | os.PathLike[str]) -> list[str]:
    """Names of compute nodes in the written QDQ graph that read no DequantizeLinear output: they run in float.

    This is read back from the file, not taken from the recipe: what was asked for and what was written can
    differ (onnxruntime leaves some ops unquantized on its own)."""
    model = onnx.load(str(int8_path), load_external_data=False)
    dq_outputs = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}

    def in_float(n: onnx.NodeProto) -> bool:
        if n.op_type in WEIGHTED_OPS and len(n.input) > 1:  # float weights: the product runs in float
            return n.input[1] not in dq_outputs
        return not any(i in dq_outputs for i in n.input if i)

    return [n.name for n in model.graph.node if n.op_type in SENSITIVE_OPS and in_float(n)]


def optimized_graph(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """The graph onnxruntime's CPU provider runs for ``path`` (optimisation level ALL, as the runtime uses)."""
    import onnxruntime as ort

    from edgecls.runtime.providers.session import session_options

    with tempfile.TemporaryDirectory(prefix="edgecls-fused-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        so = session_options()
        so.optimized_model_filepath = str(optimized)
        ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        return onnx.load(str(optimized), load_external_data=False)


def fusion_counts(int8_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Op counts of the graph onnxruntime's CPU provider runs (optimisation level ALL, as the runtime uses).

    ``int8_convs``: fused int8 conv/matmul kernels; ``float_convs``: convs left in float (each fed by
    DequantizeLinear when the fusion broke); ``int8_fraction``: int8 / (int8 + float) of the weighted ops."""
    return count_fused_ops(optimized_graph(int8_path))


def source_node(fused_name: str) -> str:
    """The source graph's node a fused node computes: onnxruntime names it ``<source>_token_<n>``."""
    return re.sub(r"_token_\d+$", "", fused_name)


def int8_kernel_sources(optimized: onnx.ModelProto) -> set[str]:
    """Names (in the QDQ file) of the convs/matmuls an optimised graph runs as fused int8 kernels."""
    return {source_node(n.name) for n in optimized.graph.node if n.op_type in INT8_CONV_OPS}


def graph_signature(optimized: onnx.ModelProto) -> str:
    """A short hash of the optimised graph's structure - each node's op, domain and arity in order, and the data
    types and shapes of its initializers - without any weight values: two trials with equal signatures run the
    same kernels on the same shapes, so their speed differs only by noise (and only accuracy can rank them)."""
    h = hashlib.sha256()
    for n in optimized.graph.node:
        h.update(f"{n.domain}:{n.op_type}:{len(n.input)}:{len(n.output)};".encode())
    for t in sorted(optimized.graph.initializer, key=lambda t: t.name):
        h.update(f"{t.data_type}{tuple(t.dims)};".encode())
    return h.hexdigest()[:16]


def count_fused_ops(optimized: onnx.ModelProto) -> dict[str, Any]:
    """``fusion_counts`` of a graph onnxruntime has already optimised (``optimized_model_filepath``), with its
    ``graph_signature``."""
    ops = Counter(n.op_type for n in optimized.graph.node)
    int8 = sum(v for k, v in ops.items() if k in INT8_CONV_OPS)
    flt = sum(v for k, v in ops.items() if k in CONV_OPS)
    return {
        "int8_convs": int8,
        "float_convs": flt,
        "int8_fraction": round(int8 / max(int8 + flt, 1), 4),
        "dequantize_linear": ops.get("DequantizeLinear", 0),
        "other_int8_ops": sum(v for k, v in ops.items() if k.startswith("QLinear") and k not in INT8_CONV_OPS),
        "graph": graph_signature(optimized),
    }
