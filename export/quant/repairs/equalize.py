"""Cross-layer equalisation of conv -> [ReLU | ReLU6] -> conv pairs in a float ONNX graph (Nagel et al. 2019,
"Data-Free Quantization Through Weight Equalization and Bias Correction", section 4.1), before quantization.

For a pair y = W2 f(W1 x + b1) with f positively homogeneous (ReLU: f(x / s) = f(x) / s for s > 0), dividing
output channel i of the first conv (weights and bias) by s_i and multiplying input channel i of the second conv
by s_i leaves y unchanged. The paper's choice s_i = sqrt(r1_i / r2_i) (r1_i: range of W1's output channel i,
r2_i: range of W2's input channel i) gives both the same range sqrt(r1_i * r2_i), so no channel of the
depthwise weights, the activation between, or the pointwise conv's input is crushed by a large neighbour.

ReLU6 (Clip(0, 6), what EfficientNet-Lite and MobileNetV2 use) is not positively homogeneous: the clip sits
at 6 in the scaled units, i.e. at 6 * s_i in the original ones. AIMET replaces ReLU6 by ReLU before
equalising (aimet_onnx/cross_layer_equalization.py: replace_relu6_with_relu), which changes the network;
NNCF's channel alignment only handles pairs without an activation between (nncf/quantization/algorithms/
channel_alignment). Here the function is kept instead, using the calibration images' per-channel maxima m_i
of the first conv's output:
- a channel whose clip is reached (m_i * HEADROOM >= 6) keeps s_i = 1: no scaling leaves its clip in place;
- any other channel may be scaled with s_i >= m_i * HEADROOM / 6, so that neither the old clip (6) nor the
  new one (6 * s_i) is reached on data up to HEADROOM times the calibration maximum: both compute ReLU there.
Pairs sharing a conv (expand -> depthwise -> project chains) are equalised in a few sweeps; the scale each
first conv's output received in total is returned so activation ranges can be derived without recalibrating.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

HEADROOM = 2.0  # data may exceed the calibration maximum by this factor and the pair stays exact
SWEEPS = 3  # passes over all pairs: chains converge within a few (Nagel et al. iterate to convergence)
MIN_SCALE, MAX_SCALE = 1e-3, 1e3  # a channel scaled further than this is left as it is (dead or degenerate)


@dataclass(frozen=True)
class Pair:
    """conv1 -> (activation) -> conv2 over the same C channels."""

    conv1: str  # node names
    conv2: str
    act: str | None  # Relu / Clip node between, None when conv1 feeds conv2 directly
    pre_act: str  # conv1's output tensor
    post_act: str  # conv2's input tensor (== pre_act without an activation)
    clip_max: float | None  # the clip of a Clip(0, c) activation (6 for ReLU6), None for ReLU


def _consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for t in n.input:
            out.setdefault(t, []).append(n)
    return out


def _group(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def _constant(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for n in model.graph.node:
        if n.op_type == "Constant" and name in n.output:
            return numpy_helper.to_array(n.attribute[0].t)
    return None


def _clip_bounds(model: onnx.ModelProto, node: onnx.NodeProto) -> tuple[float, float | None] | None:
    """(min, max) of a Clip node (max None when absent); None when a bound is not a constant."""
    bounds: list[float | None] = [None, None]
    for i, attr in enumerate(("min", "max")):
        a = next((x for x in node.attribute if x.name == attr), None)  # opset < 11
        if a is not None:
            bounds[i] = float(a.f)
        elif len(node.input) > i + 1 and node.input[i + 1]:
            v = _constant(model, node.input[i + 1])
            if v is None:
                return None
            bounds[i] = float(np.asarray(v).reshape(-1)[0])
    return (bounds[0] if bounds[0] is not None else -np.inf), bounds[1]


def _scalable_conv(node: onnx.NodeProto, inits: Mapping[str, onnx.TensorProto]) -> str | None:
    """The kind of a Conv with a 4-D weight initializer: dense (group 1), depthwise, or None (neither)."""
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
        return None
    dims = inits[node.input[1]].dims
    if len(dims) != 4:
        return None
    g = _group(node)
    if g == 1:
        return "dense"
    return "depthwise" if dims[1] == 1 and dims[0] == g else None


def find_pairs(model: onnx.ModelProto) -> list[Pair]:
    """Conv -> [Relu | Clip(0, c)] -> Conv pairs (dense or depthwise on either side) that can be equalised:
    every tensor between them has that single consumer, weights and biases are initializers used once."""
    inits = {i.name: i for i in model.graph.initializer}
    consumers = _consumers(model)
    graph_outputs = {o.name for o in model.graph.output}
    uses: dict[str, int] = {}
    for n in model.graph.node:
        for t in n.input:
            uses[t] = uses.get(t, 0) + 1
    pairs = []
    for conv1 in model.graph.node:
        if _scalable_conv(conv1, inits) is None or any(uses.get(t, 0) != 1 for t in conv1.input[1:] if t):
            continue
        if len(conv1.input) > 2 and conv1.input[2] and conv1.input[2] not in inits:
            continue
        t1 = conv1.output[0]
        nxt = consumers.get(t1, [])
        if len(nxt) != 1 or t1 in graph_outputs:
            continue
        act, clip_max, t2 = None, None, t1
        if nxt[0].op_type in ("Relu", "Clip"):
            act_node = nxt[0]
            if act_node.op_type == "Clip":
                bounds = _clip_bounds(model, act_node)
                if bounds is None or bounds[0] != 0.0:
                    continue  # only Clip(0, c): a negative or missing lower bound is not homogeneous
                clip_max = bounds[1]
            act, t2 = act_node.name, act_node.output[0]
            nxt = consumers.get(t2, [])
            if len(nxt) != 1 or t2 in graph_outputs:
                continue
        conv2 = nxt[0]
        kind2 = _scalable_conv(conv2, inits)
        if kind2 is None or conv2.input[0] != t2 or uses.get(conv2.input[1], 0) != 1:
            continue
        c = inits[conv1.input[1]].dims[0]
        w2 = inits[conv2.input[1]].dims
        if (kind2 == "dense" and w2[1] != c) or (kind2 == "depthwise" and w2[0] != c):
            continue
        pairs.append(Pair(conv1.name, conv2.name, act, t1, t2, clip_max))
    return pairs


def _channel_range(w: np.ndarray, axis: int) -> np.ndarray:
    """float64[C]: max |w| over everything but ``axis``."""
    return np.abs(np.moveaxis(w, axis, 0)).reshape(w.shape[axis], -1).max(axis=1).astype(np.float64)


def equalize(
    model: onnx.ModelProto, channel_max: Mapping[str, np.ndarray] | None = None
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """An equalised copy of ``model`` and, per rescaled activation tensor, the float32[C] factor s its channel c
    was divided by (both the first conv's output and the activation's output).

    ``channel_max``: per-channel maxima of the first convs' outputs on calibration images (``pre_act`` ->
    float[C]); required for pairs with a clip (ReLU6), which are skipped without it."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name: i for i in m.graph.initializer}
    nodes = {n.name: n for n in m.graph.node}
    pairs = [p for p in find_pairs(m) if p.clip_max is None or (channel_max and p.pre_act in channel_max)]
    touched = {t for p in pairs for t in [*nodes[p.conv1].input[1:3], nodes[p.conv2].input[1]] if t}
    weights = {name: numpy_helper.to_array(inits[name]).astype(np.float64) for name in touched}
    total: dict[str, np.ndarray] = {}
    for _ in range(SWEEPS):
        for p in pairs:
            n1, n2 = nodes[p.conv1], nodes[p.conv2]
            w1, w2 = weights[n1.input[1]], weights[n2.input[1]]
            dense2 = _group(n2) == 1
            r1 = _channel_range(w1, 0)
            r2 = _channel_range(w2, 1 if dense2 else 0)
            ok = (r1 > 0) & (r2 > 0)
            s = np.ones_like(r1)
            s[ok] = np.sqrt(r1[ok] / r2[ok])
            done = total.get(p.pre_act, np.ones_like(r1))
            if p.clip_max is not None:
                m_i = np.asarray(channel_max[p.pre_act], dtype=np.float64) * HEADROOM  # type: ignore[index]
                fires = m_i >= p.clip_max
                # cumulative scale S = done * s must stay >= m_i / clip on channels whose clip never fires
                s = np.where(fires, 1.0, np.maximum(s, m_i / p.clip_max / done))
            s = np.where((done * s < MIN_SCALE) | (done * s > MAX_SCALE), 1.0, s)
            shape1 = (-1,) + (1,) * (w1.ndim - 1)
            weights[n1.input[1]] = w1 / s.reshape(shape1)
            if len(n1.input) > 2 and n1.input[2]:
                weights[n1.input[2]] = weights[n1.input[2]] / s
            weights[n2.input[1]] = w2 * (s.reshape(1, -1, 1, 1) if dense2 else s.reshape(shape1))
            total[p.pre_act] = done * s
    for name in touched:
        init = inits[name]
        init.CopyFrom(numpy_helper.from_array(weights[name].astype(numpy_helper.to_array(init).dtype), name))
    scales: dict[str, np.ndarray] = {}
    for p in pairs:
        if p.pre_act in total:
            scales[p.pre_act] = total[p.pre_act].astype(np.float32)
            scales[p.post_act] = scales[p.pre_act]
    return m, scales


def equalized_range(
    channel_min: np.ndarray, channel_max: np.ndarray, scale: np.ndarray | None = None
) -> tuple[float, float]:
    """A tensor's (min, max) after equalisation from its float[C] per-channel minima and maxima before it:
    channel c of a rescaled tensor is divided by its s_c (> 0, so minima stay minima); ``scale`` None: a tensor
    equalisation did not touch (its plain MinMax range). Why the equalised graph is never calibrated again."""
    if scale is not None:
        channel_min, channel_max = channel_min / scale, channel_max / scale
    return float(channel_min.min()), float(channel_max.max())


def weight_range_spread(model: onnx.ModelProto, pairs: list[Pair] | None = None) -> float:
    """Mean over the pairs' first convs of log10(largest / smallest per-output-channel weight range), channels
    with all-zero weights left out: what equalisation reduces (0 = every channel has the same range)."""
    inits = {i.name: i for i in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}
    spreads = []
    for p in pairs if pairs is not None else find_pairs(model):
        r = _channel_range(numpy_helper.to_array(inits[nodes[p.conv1].input[1]]), 0)
        r = r[r > 0]
        if r.size:
            spreads.append(float(np.log10(r.max() / r.min())))
    return float(np.mean(spreads)) if spreads else 0.0
