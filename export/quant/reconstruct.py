"""Layer-wise reconstruction of an int8 QDQ graph from unlabelled calibration images: each quantized Conv/Gemm
learns which way to round every weight (AdaRound: Nagel et al. 2020, "Up or Down? Adaptive Rounding for
Post-Training Quantization", ICML) and re-fits its bias, so that its output, computed from the inputs the int8
graph really feeds it, matches the fp32 graph's.

Why: on EfficientNet-Lite0 most of int8's error is the rounding of activations, which rounding-to-nearest
weights cannot see. Done in graph order, each layer's inputs come from the int8 graph with every layer before it
already reconstructed, so a layer learns to undo the error that reaches it (the sequential scheme of BRECQ, Li
et al. 2021, at the granularity of one layer). Measured on Lite0 (256 calibration crops, 600 steps a layer), the
logit error on 400 unseen crops fell from 0.0082 to 0.0025, top-1 agreement on all of them rose from 90.8% to
94.3%, and on the 254 crops fp32 decides from 98.8% to 100% (benchmarks/quantization/README.md).

Per layer, in graph order:
1. ``x``: the tensor the int8 graph feeds it, float32[N, C, H, W] (or [N, K]), from the QDQ graph with that
   tensor added as an output; ``y``: the fp32 graph's output of the same node, clipped to the range the int8
   graph quantizes that output to (the QuantizeLinear after it: values beyond are lost either way).
2. Learn the rounding: weight = scale * (floor(w / scale) + h(V)), with h a rectified sigmoid in [0, 1] pushed
   to 0 or 1 by AdaRound's annealed regulariser, minimising the squared error to ``y`` on random patches of the
   learning images; then round h and re-fit the bias to the mean remaining error (empirical bias correction).
3. Keep the new integers only when they lower the layer's error on calibration images held aside from the
   learning; otherwise the layer keeps what it had.
The grid does not change (scales, zero points, bit widths, activation ranges): the file fuses and runs exactly as
before, on onnxruntime and OpenVINO. Every weight stays the floor or the ceiling of its float value, within the
magnitude post-training rounding gave its channel (so 7-bit weights stay 7-bit). torch is imported only here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgecls.export.quant.qdq_sites import channel_shape, node_attrs, quantized_sites, with_outputs

Log = Callable[[str], None]


@dataclass(frozen=True)
class ReconstructSettings:
    """How much each layer learns. Defaults measured on Lite0 (50 layers, 2 cores): 256 images and 600 steps a
    layer took 8 minutes and left 3 of 292 decisive held-out crops changed; 128 images and 300 steps took 4 and
    left 4, with a 10% higher logit error."""

    images: int = 256  # calibration images used (a quarter, at most 32, held aside to accept or refuse a layer)
    steps: int = 600  # AdaRound steps per layer
    batch: int = 16  # images per step
    patch: int = 16  # output rows and columns per step (a random window; the whole map when smaller)
    reg_weight: float = 0.01  # AdaRound's rounding regulariser (lambda)
    seconds: float = 600.0  # layers not reached by then keep post-training's rounding
    seed: int = 0
    # A layer's inputs and targets are held in memory for all its images: a layer whose tensors would pass this
    # learns from fewer images (Lite0 at 224 px: its largest layer needs about 1.2 GB for 256 images).
    max_bytes: int = 2 * 1024**3


@dataclass
class _Layer:
    """One quantized Conv/Gemm and the initializers reconstruction rewrites."""

    node: onnx.NodeProto
    weight: str  # int8 weight initializer (the integers; the zero point is 0)
    weight_scale: np.ndarray  # float32[O] or scalar
    bias: str  # int32 bias initializer
    bias_scale: np.ndarray  # float64[O] (= input scale * weight scale)
    float_weight: np.ndarray  # float32 weights the integers round, [O, C/g, kh, kw] or [O, K]
    clip: tuple[float, float]  # range the int8 graph quantizes this layer's output to


def _output_range(
    model: onnx.ModelProto, node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]
) -> tuple[float, float]:
    quant = next((n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == node.output[0]), None)
    if quant is None or len(quant.input) < 3:
        return -np.inf, np.inf
    scale = float(numpy_helper.to_array(inits[quant.input[1]]))
    zp_init = inits[quant.input[2]]
    zp = float(numpy_helper.to_array(zp_init))
    info = np.iinfo(onnx.helper.tensor_dtype_to_np_dtype(zp_init.data_type))
    return (info.min - zp) * scale, (info.max - zp) * scale


def _layers(model: onnx.ModelProto, fp32: onnx.ModelProto) -> list[_Layer]:
    """The layers reconstruction can rewrite: symmetric integer weights, 2-D convs (no dilation, explicit pads) or
    x W^T + b Gemms, with float weights of the same shape in ``fp32`` (same node names)."""
    inits = {i.name: i for i in model.graph.initializer}
    fp32_nodes = {n.name: n for n in fp32.graph.node}
    fp32_inits = {i.name: i for i in fp32.graph.initializer}
    layers = []
    for node, wdq, bdq in quantized_sites(model):
        f = fp32_nodes.get(node.name)
        if f is None or f.input[1] not in fp32_inits:
            continue
        wf = numpy_helper.to_array(fp32_inits[f.input[1]]).astype(np.float32)
        wq = numpy_helper.to_array(inits[wdq.input[0]])
        zp = numpy_helper.to_array(inits[wdq.input[2]]) if len(wdq.input) > 2 else np.zeros(1)
        a = node_attrs(node)
        if wf.shape != wq.shape or np.any(zp != 0) or not np.issubdtype(wq.dtype, np.signedinteger):
            continue
        if node.op_type == "Conv" and (
            wq.ndim != 4
            or any(d != 1 for d in a.get("dilations", [1, 1]))  # type: ignore[union-attr]
            or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
        ):
            continue
        layers.append(
            _Layer(
                node,
                wdq.input[0],
                numpy_helper.to_array(inits[wdq.input[1]]).astype(np.float32),
                bdq.input[0],
                numpy_helper.to_array(inits[bdq.input[1]]).astype(np.float64),
                wf,
                _output_range(model, node, inits),
            )
        )
    return layers


class _Runner:
    """One tensor of a graph over the images, batched (a session per request: the graph changes between)."""

    def __init__(self, inputs: np.ndarray, precise: bool) -> None:
        self.inputs, self.precise = inputs, precise

    def tensor(self, model: onnx.ModelProto, name: str, max_bytes: float, images: int | None = None) -> np.ndarray:
        """The tensor on the first ``images`` inputs (None: all), stopping before it holds ``max_bytes``."""
        import onnxruntime as ort

        from edgecls.export.quant.evaluate import int8_session_options

        so = int8_session_options(self.precise)
        sess = ort.InferenceSession(with_outputs(model, [name]), sess_options=so, providers=["CPUExecutionProvider"])
        input_name = sess.get_inputs()[0].name
        inputs = self.inputs[:images]
        parts: list[np.ndarray] = []
        held = 0
        for i in range(0, len(inputs), 16):
            part = sess.run([name], {input_name: inputs[i : i + 16]})[0]
            if parts and held + part.nbytes > max_bytes:
                break
            parts.append(part)
            held += part.nbytes
        return np.concatenate(parts)


class _LayerFit:
    """The torch side of one layer: its operation on (patches of) inputs and the clipped squared error."""

    def __init__(self, layer: _Layer, x: np.ndarray, y: np.ndarray, settings: ReconstructSettings) -> None:
        import torch
        import torch.nn.functional as F

        self.torch, self.F, self.layer, self.settings = torch, F, layer, settings
        self.lo, self.hi = layer.clip
        a = node_attrs(layer.node)
        self.conv = layer.node.op_type == "Conv"
        if self.conv:
            top, left, bottom, right = a.get("pads", [0, 0, 0, 0])  # type: ignore[misc]
            # float32[N, C, H + pads, W + pads]: padded once, so a patch is a plain slice
            self.x = F.pad(torch.from_numpy(x), (left, right, top, bottom))
            self.stride = list(a.get("strides", [1, 1]))  # type: ignore[call-overload]
            self.kernel = layer.float_weight.shape[2:]
            self.groups = int(a.get("group", 1))  # type: ignore[call-overload]
        else:
            self.x = torch.from_numpy(x)
        self.y = torch.from_numpy(y).clamp(self.lo, self.hi)  # float32[N, O, H', W'] or [N, O]
        self.scale = torch.from_numpy(
            layer.weight_scale.reshape(channel_shape(layer.weight_scale, layer.float_weight.ndim))
        )

    def apply(self, x: Any, weight: Any, bias: Any) -> Any:
        if self.conv:
            return self.F.conv2d(x, weight, bias, stride=self.stride, groups=self.groups).clamp(self.lo, self.hi)
        return self.F.linear(x, weight, bias).clamp(self.lo, self.hi)

    def window(self, idx: Any, rng: np.random.Generator) -> tuple[Any, Any]:
        """(inputs, targets) of images ``idx`` over a random patch x patch window of the output."""
        if not self.conv or max(self.y.shape[2:]) <= self.settings.patch:
            return self.x[idx], self.y[idx]
        p = self.settings.patch
        oy = int(rng.integers(0, max(1, self.y.shape[2] - p + 1)))
        ox = int(rng.integers(0, max(1, self.y.shape[3] - p + 1)))
        (sh, sw), (kh, kw) = self.stride, self.kernel
        x = self.x[idx, :, oy * sh : oy * sh + (p - 1) * sh + kh, ox * sw : ox * sw + (p - 1) * sw + kw]
        return x, self.y[idx, :, oy : oy + p, ox : ox + p]

    def error(self, weight: Any, bias: Any, idx: Any) -> float:
        """Mean squared error over whole images ``idx`` (no gradient)."""
        with self.torch.no_grad():
            total = sum(float(((self.apply(self.x[i], weight, bias) - self.y[i]) ** 2).sum()) for i in idx.split(8))
        return total / max(1, int(self.y[idx].numel()))

    def refit_bias(self, weight: Any, bias: Any, idx: Any) -> Any:
        """Bias + the per-channel mean of (target - output) where the output is not clipped."""
        torch = self.torch
        with torch.no_grad():
            num = torch.zeros_like(bias, dtype=torch.float64)
            den = torch.zeros_like(bias, dtype=torch.float64)
            for i in idx.split(8):
                out = self.apply(self.x[i], weight, bias)
                inside = ((out > self.lo) & (out < self.hi)).double()
                dims = [0] + list(range(2, out.ndim))
                num += ((self.y[i] - out).double() * inside).sum(dims)
                den += inside.sum(dims)
            return bias + (num / den.clamp(min=1)).float()

    def adaround(self, learn: Any, rng: np.random.Generator, bias: Any, current: Any) -> Any:
        """Integer weights (float tensor) learned on images ``learn``, each the floor or ceiling of w / scale and
        within the magnitude the ``current`` integers reach in its channel (no new bit: 7-bit weights stay
        7-bit)."""
        torch, s = self.torch, self.settings
        ratio = torch.from_numpy(self.layer.float_weight) / self.scale
        base = torch.floor(ratio)
        rest = (ratio - base).clamp(0.01, 0.99)
        v = (-torch.log(1.2 / (rest + 0.1) - 1)).requires_grad_(True)  # h(v) = rest at the start

        def soft(v: Any) -> Any:  # AdaRound's rectified sigmoid
            return (torch.sigmoid(v) * 1.2 - 0.1).clamp(0, 1)

        limit = (
            current.abs().amax(dim=tuple(range(1, ratio.ndim)), keepdim=True)
            if self.scale.ndim
            else current.abs().max()
        )
        opt = torch.optim.Adam([v], lr=1e-2)
        warm = int(0.2 * s.steps)
        for step in range(s.steps):
            idx = learn[torch.from_numpy(rng.integers(0, len(learn), s.batch))]
            x, y = self.window(idx, rng)
            weight = torch.maximum(torch.minimum(base + soft(v), limit), -limit) * self.scale
            loss = ((self.apply(x, weight, bias) - y) ** 2).mean() / (y.pow(2).mean() + 1e-12)
            if step >= warm:  # anneal beta 20 -> 2: free at first, then pushed to 0 or 1
                beta = 20 - 18 * (step - warm) / max(1, s.steps - warm)
                loss = loss + s.reg_weight * (1 - (2 * soft(v) - 1).abs().pow(beta)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return torch.maximum(torch.minimum(base + (soft(v) >= 0.5).float(), limit), -limit)


def _held_aside(n: int) -> tuple[Any, Any]:
    """(images that accept or refuse a layer, images it learns from) as index tensors: a quarter, at most 32,
    held aside; with fewer than 4 images both are all of them."""
    import torch

    held = min(n // 4, 32) if n >= 4 else n
    return torch.arange(held), torch.arange(held if n >= 4 else 0, n)


def reconstruct_layers(
    int8_path: str | os.PathLike[str],
    fp32: onnx.ModelProto,
    inputs: np.ndarray,
    settings: ReconstructSettings | None = None,
    precise: bool = False,
    log: Log | None = None,
) -> dict[str, float]:
    """Reconstruct the QDQ model at ``int8_path`` in place from the fp32 graph ``fp32`` (same node names), on
    float32[N, 3, h, w] calibration ``inputs``. ``precise``: the int8 graph's tensors are computed with
    onnxruntime's exact kernels (the target is not this CPU). Returns a summary for the report."""
    import torch

    s = settings or ReconstructSettings()
    t0 = time.perf_counter()
    path = Path(int8_path)
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    layers = _layers(model, fp32)
    fp32_nodes = {n.name: n for n in fp32.graph.node}
    runner = _Runner(inputs, precise)
    rng = np.random.default_rng(s.seed)
    torch.manual_seed(s.seed)
    improved = timed_out = 0
    ratios: list[float] = []
    for k, layer in enumerate(layers):
        if time.perf_counter() - t0 > s.seconds:
            timed_out = len(layers) - k
            break
        x = runner.tensor(model, layer.node.input[0], s.max_bytes / 2)
        y = runner.tensor(fp32, fp32_nodes[layer.node.name].output[0], s.max_bytes / 2, len(x))
        x = x[: len(y)]  # the same images, within the memory bound
        check, learn = _held_aside(len(x))
        fit = _LayerFit(layer, x, y, s)
        w_int = torch.from_numpy(numpy_helper.to_array(inits[layer.weight]).astype(np.float32))
        bias = torch.from_numpy((numpy_helper.to_array(inits[layer.bias]) * layer.bias_scale).astype(np.float32))
        before = fit.error(w_int * fit.scale, bias, check)
        new_int = fit.adaround(learn, rng, bias, w_int)
        new_bias = fit.refit_bias(new_int * fit.scale, bias, learn)
        after = fit.error(new_int * fit.scale, new_bias, check)
        if after < before:
            improved += 1
            ratios.append(after / max(before, 1e-30))
            dtype = numpy_helper.to_array(inits[layer.weight]).dtype
            inits[layer.weight].CopyFrom(numpy_helper.from_array(new_int.numpy().astype(dtype), layer.weight))
            q_bias = np.rint(new_bias.numpy().astype(np.float64) / np.maximum(layer.bias_scale, 1e-30))
            q_bias = np.clip(q_bias, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
            inits[layer.bias].CopyFrom(numpy_helper.from_array(q_bias, layer.bias))
        if log is not None and (k + 1) % 10 == 0 and k + 1 < len(layers):
            spent = time.perf_counter() - t0
            left = spent / (k + 1) * (len(layers) - k - 1)
            log(f"    reconstructed {k + 1}/{len(layers)} layers in {spent:.0f} s (about {left:.0f} s left)")
    onnx.save(model, str(path))
    return {
        "layers": float(len(layers)),
        "improved": float(improved),
        "not_reached": float(timed_out),
        "median_error_ratio": float(np.median(ratios)) if ratios else 1.0,
        "seconds": time.perf_counter() - t0,
        "images": float(len(inputs)),
    }
