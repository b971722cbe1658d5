"""How many convs run in int8 and in float, and why: the file's own choice or this CPU's onnxruntime.

Issue 31 item 5: for an arm64 (s8s8) file made on x86 the log said "36 int8 / 14 float convs" per trial while the
verdict said "0 nodes in float". Both were right about different things: the verdict counts the compute nodes the
QDQ file keeps in float (the recipe's choice, what any runtime sees), the trial line counted what onnxruntime *on
this CPU* fuses (x86's QDQ fusions leave some s8s8 convs as DequantizeLinear -> float conv -> QuantizeLinear; an
arm64 device fuses its own way). And the other way round: a conv the file keeps float between DequantizeLinear and
QuantizeLinear is re-quantized by onnxruntime (its WeightBiasQuantization transformer gives it per-tensor int8
weights), so it runs in int8 although the file says float. The counts now say which is which.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import onnx

from edgecls.export.quant.grading.fused_graph import (
    WEIGHTED_OPS,
    count_fused_ops,
    float_compute_nodes,
    int8_kernel_sources,
    optimized_graph,
)


@dataclass(frozen=True)
class ConvCounts:
    """``int8`` / ``float``: convs (and matmuls) onnxruntime runs here as int8 kernels / in float; ``kept_float``:
    those the QDQ file keeps float (its recipe); ``requantized``: of those, the ones onnxruntime runs in int8 anyway;
    ``unfused_here``: float convs the file quantizes but this CPU's onnxruntime does not fuse."""

    int8: int
    float: int
    kept_float: int
    requantized: int

    @property
    def unfused_here(self) -> int:
        return max(0, self.float - (self.kept_float - self.requantized))

    def line(self) -> str:
        """``36 int8 / 14 float convs as onnxruntime runs them here; the file keeps 0 float: 14 not fused into int8
        kernels by this CPU's onnxruntime (another CPU fuses its own way)``."""
        text = (
            f"{self.int8} int8 / {self.float} float convs as onnxruntime runs them here; "
            f"the file keeps {self.kept_float} float"
        )
        why = []
        if self.unfused_here:
            why.append(
                f"{self.unfused_here} not fused into int8 kernels by this CPU's onnxruntime (another CPU fuses its "
                "own way)"
            )
        if self.requantized:
            why.append(
                f"{self.requantized} of those re-quantized by onnxruntime (per-tensor int8 weights for a float conv "
                "between DequantizeLinear and QuantizeLinear)"
            )
        return text + (f": {'; '.join(why)}" if why else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unfused_here": self.unfused_here}


def conv_counts(qdq_path: str | os.PathLike[str], optimized: onnx.ModelProto) -> ConvCounts:
    """The counts of the QDQ file ``qdq_path`` and the graph onnxruntime made of it here (``optimized``)."""
    fused = count_fused_ops(optimized)
    model = onnx.load(str(qdq_path), load_external_data=False)
    weighted = {n.name for n in model.graph.node if n.op_type in WEIGHTED_OPS}
    kept = [n for n in float_compute_nodes(qdq_path) if n in weighted]
    requantized = len(set(kept) & int8_kernel_sources(optimized))
    return ConvCounts(fused["int8_convs"], fused["float_convs"], len(kept), requantized)


def fusion_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The report's ``fusion``: onnxruntime's op counts of ``path`` here, and its conv counts with why."""
    graph = optimized_graph(path)
    counts = conv_counts(path, graph)
    extra = {k: v for k, v in counts.to_dict().items() if k not in ("int8", "float")}  # count_fused_ops has them
    return {**count_fused_ops(graph), **extra, "line": counts.line()}
