"""Where an ONNX file spends its time on this CPU, node by node: onnxruntime's own profiler on the graph it really
runs (after its fusions and layout transforms), with the sessions ``edgecls run`` makes.

Issue 32: the search timed whole graphs and never asked which nodes are slower in int8 than in float. Here each
node of the optimised graph gets its median time per call over the profiled calls (the median: the first calls
and a busy machine's spikes do not move it), a *kind* (depthwise conv, 1x1 conv, 3x3 conv, quantize/dequantize,
layout transpose, NCHWc reorder, ...) and, for convs, the name of the conv of the source graph it computes, so
an int8 file and its fp32 model can be compared conv by conv (``compare``) and kind by kind (``kind_totals``).

Names (onnxruntime 1.32): a fused int8 conv is named ``<source conv>_token_<n>``; an fp32 NCHWc conv is named
after the tensor its fused chain writes (``<conv or activation output>_nchwc``), traced back to its conv through
the source graph.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgecls.export.quant.grading.fused_graph import source_node

#: Activations onnxruntime fuses into the conv before them (the NCHWc node is named after their output).
_FUSED_ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "Tanh"})
_CONVS = frozenset({"Conv", "QLinearConv", "FusedConv", "ConvInteger"})
_KINDS = {
    "QuantizeLinear": "quantize/dequantize",
    "DequantizeLinear": "quantize/dequantize",
    "Transpose": "transpose (NHWC layout)",
    "ReorderInput": "reorder (NCHWc layout)",
    "ReorderOutput": "reorder (NCHWc layout)",
    "Gemm": "gemm", "QGemm": "gemm", "MatMul": "gemm", "FusedGemm": "gemm", "QLinearMatMul": "gemm",
    "Add": "add", "QLinearAdd": "add", "Sum": "add",
    "GlobalAveragePool": "pooling", "QLinearGlobalAveragePool": "pooling", "ReduceMean": "pooling",
    "AveragePool": "pooling", "QLinearAveragePool": "pooling", "MaxPool": "pooling",
}


@dataclass(frozen=True)
class NodeTime:
    """One node of the optimised graph: ``us`` = median microseconds per call; ``source``: the conv of the source
    graph it computes (convs only, else None)."""

    name: str
    op: str
    kind: str
    us: float
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def node_kind(node: onnx.NodeProto) -> str:
    """What a node of an optimised graph does, in the terms the per-kind report uses."""
    if node.op_type not in _CONVS:
        return _KINDS.get(node.op_type, node.op_type)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if int(attrs.get("group", 1)) > 1:
        return "depthwise conv"
    kernel = list(attrs.get("kernel_shape", []))
    return f"{'x'.join(map(str, kernel))} conv" if kernel else "conv"


def _conv_of_tensor(source: onnx.ModelProto) -> dict[str, str]:
    """Tensor -> the conv whose (fused-activation) chain writes it, in the source graph."""
    producer = {o: n for n in source.graph.node for o in n.output}
    out: dict[str, str] = {}
    for tensor, node in producer.items():
        if node.op_type in _FUSED_ACTIVATIONS and node.input and node.input[0] in producer:
            node = producer[node.input[0]]
        if node.op_type == "Conv":
            out[tensor] = node.name
    return out


def _source_conv(node: onnx.NodeProto, by_tensor: dict[str, str], names: set[str]) -> str | None:
    if node.op_type not in _CONVS:
        return None
    stripped = source_node(node.name)
    if stripped in names:
        return stripped
    return by_tensor.get(node.name.removesuffix("_nchwc")) or by_tensor.get(node.output[0] if node.output else "")


def profile_nodes(path: str | os.PathLike[str], calls: int = 30, warmup: int = 10) -> list[NodeTime]:
    """Each node of ``path`` as onnxruntime runs it here (the timing threads, no spinning, the bench's input):
    median microseconds per call over ``calls`` profiled calls after ``warmup`` unprofiled ones."""
    import onnxruntime as ort

    from edgecls.export.quant.search.paired_timing import bench_input, timing_threads
    from edgecls.runtime.providers.session import session_options

    source = onnx.load(str(path), load_external_data=False)
    with tempfile.TemporaryDirectory(prefix="edgecls-profile-") as tmp:
        so = session_options(timing_threads(), spin=False)
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "profile")
        sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        x = bench_input(sess)
        feed = {sess.get_inputs()[0].name: x}
        for _ in range(warmup + calls):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
        optimized = onnx.load(str(Path(tmp) / "optimized.onnx"), load_external_data=False)
    durations: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            durations[e["name"][: -len("_kernel_time")]].append(float(e["dur"]))
    by_tensor, names = _conv_of_tensor(source), {n.name for n in source.graph.node}
    times = []
    for node in optimized.graph.node:
        runs = durations.get(node.name, [])[-calls:]  # the warm-up calls are profiled too: drop them
        if runs:
            times.append(
                NodeTime(node.name, node.op_type, node_kind(node), float(np.median(runs)),
                         _source_conv(node, by_tensor, names))
            )
    return times


def kind_totals(times: list[NodeTime]) -> dict[str, float]:
    """Kind -> summed median microseconds per call, largest first."""
    totals: dict[str, float] = defaultdict(float)
    for t in times:
        totals[t.kind] += t.us
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


@dataclass(frozen=True)
class ConvTime:
    """One conv of the source graph: its kind and its time per call in the int8 file and in the fp32 model."""

    conv: str
    kind: str
    int8_us: float
    fp32_us: float

    @property
    def int8_slower(self) -> bool:
        return self.int8_us > self.fp32_us


def compare(int8: list[NodeTime], fp32: list[NodeTime]) -> list[ConvTime]:
    """Conv by conv (those found in both profiles), in the int8 graph's order."""
    fp32_by_conv = {t.source: t for t in fp32 if t.source}
    return [
        ConvTime(t.source, t.kind, t.us, fp32_by_conv[t.source].us)
        for t in int8
        if t.source and t.source in fp32_by_conv
    ]
