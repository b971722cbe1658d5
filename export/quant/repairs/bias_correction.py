"""Bias correction of an int8 QDQ graph for the error its rounded weights make on average (Nagel et al. 2019,
"Data-Free Quantization Through Weight Equalization and Bias Correction", section 4.2, with the input
statistics measured on calibration images instead of derived from BatchNorm).

Rounding a channel's weights is not zero-mean over that channel's inputs: depthwise convolutions (9 weights
per channel) shift most. For every Conv/Gemm with a quantized bias, the expected output error of the rounded
weights is computed from the float model's input statistics and subtracted through the bias:

    b_c <- b_c + sum_{i,k} (W - W_q)[c, i, k] * E[x_patch[i, k]]

where ``E[x_patch[i, k]]`` is the mean over calibration images and output positions of input channel i at
kernel offset k (zero padding included), measured once in the fp32 graph. Convs without a bias input (no
BatchNorm folded into them) are left as they are. Linear in the weights, so one pass,
no feedback: correcting activation errors by chasing per-channel output means made EfficientNet-Lite0 worse
(benchmarks/quantization/README.md), because the activation ranges were calibrated before the shift.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgecls.export.quant.repairs.qdq_sites import dequantize, node_attrs, quantized_sites, with_outputs

BATCH = 8


def _patch_means(x: np.ndarray, node: onnx.NodeProto, kernel: tuple[int, int]) -> np.ndarray:
    """float64[C, kh, kw]: mean over images and output positions of the (zero-padded) input seen at each
    kernel offset of a 2-D Conv; ``x`` is float32[B, C, H, W]."""
    a = node_attrs(node)
    kh, kw = kernel
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    pads = a.get("pads", [0, 0, 0, 0])
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        # SAME_UPPER/LOWER: total padding so that out = ceil(in / stride)
        h, w = x.shape[2:]
        ph = max((-(-h // sh) - 1) * sh + (kh - 1) * dh + 1 - h, 0)
        pw = max((-(-w // sw) - 1) * sw + (kw - 1) * dw + 1 - w, 0)
        pads = [ph // 2, pw // 2, ph - ph // 2, pw - pw // 2]
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    ho = (xp.shape[2] - (kh - 1) * dh - 1) // sh + 1
    wo = (xp.shape[3] - (kw - 1) * dw - 1) // sw + 1
    out = np.empty((x.shape[1], kh, kw))
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
            out[:, i, j] = win.mean(axis=(0, 2, 3), dtype=np.float64)
    return out


def _input_means(
    fp32: onnx.ModelProto, nodes: list[onnx.NodeProto], inits: dict[str, onnx.TensorProto], inputs: np.ndarray
) -> dict[str, np.ndarray]:
    """Per node: float64[C, kh, kw] patch means of its input (Conv) or float64[K] input means (Gemm)."""
    import onnxruntime as ort

    from edgecls.runtime.providers.session import session_options

    x_names = sorted({f.input[0] for f in nodes})
    sess = ort.InferenceSession(
        with_outputs(fp32, x_names), sess_options=session_options(), providers=["CPUExecutionProvider"]
    )
    input_name = sess.get_inputs()[0].name
    sums: dict[str, np.ndarray] = {}
    batches = 0
    for i in range(0, len(inputs), BATCH):
        xs = dict(zip(x_names, sess.run(x_names, {input_name: inputs[i : i + BATCH]}), strict=True))
        for f in nodes:
            x = xs[f.input[0]]
            if f.op_type == "Conv":
                w = inits[f.input[1]]
                stat = _patch_means(x, f, (w.dims[2], w.dims[3]))  # float64[C, kh, kw]
            else:
                stat = x.reshape(x.shape[0], -1).mean(axis=0, dtype=np.float64)  # float64[K]
            sums[f.name] = sums.get(f.name, 0.0) + stat
        batches += 1
    return {name: total / batches for name, total in sums.items()}


def correct_biases(
    int8_path: str | os.PathLike[str],
    fp32: onnx.ModelProto,
    inputs: np.ndarray,
    means: dict[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """Correct the QDQ model at ``int8_path`` in place, from the fp32 graph ``fp32`` (same node names) run on
    float32[N, 3, h, w] calibration ``inputs``. ``means``: a cache of the fp32 input statistics per node, filled
    on first use and reused by later calls for the same graph and inputs. Returns a summary for the report."""
    path = Path(int8_path)
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    fp32_nodes = {n.name: n for n in fp32.graph.node}
    fp32_inits = {i.name: i for i in fp32.graph.initializer}
    sites = [
        s for s in quantized_sites(model) if s[0].name in fp32_nodes and fp32_nodes[s[0].name].input[1] in fp32_inits
    ]
    if not sites:
        return {"layers": 0.0}
    means = {} if means is None else means
    if not all(n.name in means for n, _, _ in sites):
        means.update(_input_means(fp32, [fp32_nodes[n.name] for n, _, _ in sites], fp32_inits, inputs))
    shifts = []
    for node, wdq, bdq in sites:
        f = fp32_nodes[node.name]
        err = numpy_helper.to_array(fp32_inits[f.input[1]]).astype(np.float64) - dequantize(inits, wdq)
        m = means[node.name]
        if node.op_type == "Conv":  # err: [O, C/g, kh, kw]; m: [C, kh, kw]
            group = int(node_attrs(f).get("group", 1))
            per_group = err.shape[1]
            m_g = m.reshape(group, per_group, *m.shape[1:])  # [g, C/g, kh, kw]
            o_per_group = err.shape[0] // group
            delta = np.einsum("gocij,gcij->go", err.reshape(group, o_per_group, *err.shape[1:]), m_g).reshape(-1)
        else:  # Gemm with transB: err [O, K], m [K]
            delta = err @ m
        binit = inits[bdq.input[0]]
        q_bias = numpy_helper.to_array(binit).astype(np.int64)
        scale = numpy_helper.to_array(inits[bdq.input[1]]).astype(np.float64)
        step = np.rint(delta / np.maximum(scale, 1e-30)).astype(np.int64)
        new = np.clip(q_bias + step, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
        binit.CopyFrom(numpy_helper.from_array(new.reshape(q_bias.shape), binit.name))
        shifts.append(float(np.mean(np.abs(delta))))
    onnx.save(model, str(path))
    return {"layers": float(len(sites)), "mean_abs_shift": float(np.mean(shifts))}
