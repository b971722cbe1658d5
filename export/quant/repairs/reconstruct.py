"""Layer-wise reconstruction of an int8 QDQ graph from unlabelled calibration images, a repair step of the int8
search with one job: each quantized Conv/Gemm chooses which way to round every weight and re-fits its bias, so
that its output, computed from the inputs the int8 graph really feeds it, matches the fp32 graph's. Interface:
``reconstruct_layers(int8 file, fp32 graph, calibration inputs, settings) -> Reconstruction`` (the file is
rewritten in place; the search decides whether to keep it).

Why: on EfficientNet-Lite0 most of int8's error is the rounding of activations, which rounding-to-nearest
weights cannot see. Done in graph order, each layer's inputs come from the int8 graph with every layer before it
already reconstructed, so a layer learns to undo the error that reaches it (the sequential scheme of BRECQ, Li
et al. 2021, at the granularity of one layer).

Per layer, in graph order:
1. ``x``: the tensor the int8 graph feeds it, float32[N, C, H, W] (or [N, K]); ``y``: the fp32 graph's output
   of the same node. Both computed on from the tensors of the previous layer (``layer_tensors.GraphTensors``),
   so each node of either graph runs once over the images.
2. Gather the layer's error as a quadratic form of its weights over the learning images (``layer_fit.Moments``,
   one pass), choose the rounding from it (``ordered_rounding``, one pass; or ``adaround``, until it settles or
   ``steps`` are run), then re-fit the bias to the mean remaining clipped error (``layer_fit.LayerFit``).
3. Keep the new integers only when they lower the layer's error on calibration images held aside from the
   learning; otherwise the layer keeps what it had.

Bounded by counts (images, layers, steps), not by the clock, and nothing is random: the same inputs make the
same file on a quiet or a busy machine (torch runs ``threads`` threads, one by default, whose sums do not depend
on scheduling; onnxruntime runs ``ort_threads`` intra-op threads without spinning, so neither starves the
other). ``seconds`` is only a safety cap: when it bites, the layers left keep post-training's rounding and the
summary names them.

The grid does not change (scales, zero points, bit widths, activation ranges): the file fuses and runs exactly as
before, on onnxruntime and OpenVINO. Every weight stays the floor or the ceiling of its float value, within the
magnitude post-training rounding gave its channel (so 7-bit weights stay 7-bit). torch is imported only by this
step's modules.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgecls.export.quant.repairs.adaround import FitSettings, adaround
from edgecls.export.quant.repairs.layer_fit import LayerFit, LayerGeometry
from edgecls.export.quant.repairs.layer_tensors import BATCH, GraphTensors, session
from edgecls.export.quant.repairs.ordered_rounding import ordered_rounding
from edgecls.export.quant.repairs.qdq_sites import node_attrs, quantized_sites, with_outputs

Log = Callable[[str], None]


@dataclass(frozen=True)
class ReconstructSettings:
    """How much reconstruction learns: counts, so that the result does not depend on the machine's speed."""

    images: int = 256  # calibration images used (a quarter, at most 32, held aside to accept or refuse a layer)
    # How a layer's rounding is chosen from its moments: "ordered" (ordered_rounding.py: column by column with
    # the error fed forward, one pass) or "adaround" (adaround.py: learned, ``steps`` at most)
    solver: str = "ordered"
    steps: int = 400  # AdaRound steps per layer at most (fewer when its rounding settles first)
    reg_weight: float = 0.01  # AdaRound's rounding regulariser (lambda)
    seconds: float = 600.0  # safety cap: layers not reached by then keep post-training's rounding
    # torch's threads while learning: 1 makes its sums independent of scheduling (the same file under any load);
    # onnxruntime's passes over the images use ``ort_threads`` (0: every core), without spinning.
    threads: int = 1
    ort_threads: int = 0
    # The tensors held at once (a layer's inputs, their integers and its targets): a graph whose layers would
    # pass it learns from fewer images.
    max_bytes: int = 2 * 1024**3

    def fit(self) -> FitSettings:
        return FitSettings(steps=self.steps, reg_weight=self.reg_weight)


@dataclass
class Reconstruction:
    """What reconstruction did, for the search's note and the report."""

    layers: int
    images: int
    improved: int = 0
    steps: list[int] = field(default_factory=list)  # steps run per layer reached
    settled: int = 0  # layers whose rounding settled before ``steps``
    error_ratios: list[float] = field(default_factory=list)  # held-aside error after / before, improved layers
    left: list[str] = field(default_factory=list)  # layers the time cap left at post-training's rounding
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def summary(self) -> str:
        """One line for the search's refinement note."""
        ratio = float(np.median(self.error_ratios)) if self.error_ratios else 1.0
        text = f"{self.improved} of {self.layers} layers improved on held-aside calibration images"
        if sum(self.steps):
            text += f" ({sum(self.steps)} AdaRound steps, {self.settled} layers settled early)"
        text += (
            f", median layer error x{ratio:.2f}, {self.seconds:.0f} s ({self.cpu_seconds:.0f} s CPU) on "
            f"{self.images} images"
        )
        if self.left:
            text += f"; the time cap left {len(self.left)} layers at post-training's rounding: {', '.join(self.left)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "layers": float(self.layers),
            "improved": float(self.improved),
            "not_reached": float(len(self.left)),
            "left": list(self.left),
            "median_error_ratio": float(np.median(self.error_ratios)) if self.error_ratios else 1.0,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "images": float(self.images),
            "steps": float(sum(self.steps)),
            "settled": float(self.settled),
        }


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the block (restored after: the process may train or serve)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    target: str  # the fp32 graph's output of the same node
    source: str  # and its input (the same shape as the int8 graph's input to the layer)


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
                f.output[0],
                f.input[0],
            )
        )
    return layers


def _image_count(fp32: onnx.ModelProto, layers: list[_Layer], inputs: np.ndarray, s: ReconstructSettings) -> int:
    """How many images every layer learns from: ``s.images``, fewer when a layer's inputs (float and their
    integers) and targets for that many would pass the memory bound (EfficientNet-Lite0 at 224 px: 7.2 MB an
    image for its largest layer, so 256 images fit in 2 GB), but at least one batch."""
    names = list(dict.fromkeys(n for layer in layers for n in (layer.source, layer.target)))
    sess = session(with_outputs(fp32, names), False, 1)
    sizes = dict(zip(names, sess.run(names, {sess.get_inputs()[0].name: inputs[:1]}), strict=True))  # type: ignore
    peak = max((sizes[layer.source].nbytes * 5 // 4 + sizes[layer.target].nbytes for layer in layers), default=1)
    return int(min(len(inputs), s.images, max(BATCH, s.max_bytes // max(peak, 1))))


def _held_aside(n: int) -> tuple[Any, Any]:
    """(images that accept or refuse a layer, images it learns from) as index tensors: a quarter, at most 32,
    held aside; with fewer than 4 images both are all of them."""
    import torch

    held = min(n // 4, 32) if n >= 4 else n
    return torch.arange(held), torch.arange(held if n >= 4 else 0, n)


def _write(layer: _Layer, inits: dict[str, onnx.TensorProto], integers: Any, bias: Any) -> None:
    """The learned integers and bias into the model's initializers (the int32 bias on its fine grid)."""
    dtype = numpy_helper.to_array(inits[layer.weight]).dtype
    inits[layer.weight].CopyFrom(numpy_helper.from_array(integers.numpy().astype(dtype), layer.weight))
    q_bias = np.rint(bias.numpy().astype(np.float64) / np.maximum(layer.bias_scale, 1e-30))
    q_bias = np.clip(q_bias, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
    inits[layer.bias].CopyFrom(numpy_helper.from_array(q_bias, layer.bias))


def reconstruct_layers(
    int8_path: str | os.PathLike[str],
    fp32: onnx.ModelProto,
    inputs: np.ndarray,
    settings: ReconstructSettings | None = None,
    precise: bool = False,
    log: Log | None = None,
) -> Reconstruction:
    """Reconstruct the QDQ model at ``int8_path`` in place from the fp32 graph ``fp32`` (same node names), on
    float32[N, 3, h, w] calibration ``inputs``. ``precise``: the int8 graph's tensors are computed with
    onnxruntime's exact kernels (the target is not this CPU)."""
    s = settings or ReconstructSettings()
    with _torch_threads(s.threads):
        return _reconstruct(Path(int8_path), fp32, inputs, s, precise, log or (lambda _m: None))


def _reconstruct(
    path: Path, fp32: onnx.ModelProto, inputs: np.ndarray, s: ReconstructSettings, precise: bool, log: Log
) -> Reconstruction:
    import torch

    t0, cpu0 = time.perf_counter(), time.process_time()
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    layers = _layers(model, fp32)
    n = _image_count(fp32, layers, inputs, s) if layers else 0
    threads = s.ort_threads or os.cpu_count() or 1
    int8 = GraphTensors(model, inputs[:n], precise, threads)
    targets = GraphTensors(fp32, inputs[:n], False, threads)
    check, learn = _held_aside(n)
    done = Reconstruction(len(layers), n)
    for k, layer in enumerate(layers):
        if time.perf_counter() - t0 > s.seconds:
            done.left = [later.node.name for later in layers[k:]]
            log(
                f"    reconstruction: the time cap ({s.seconds:.0f} s) stopped it after {k} of {len(layers)} layers; "
                f"{len(done.left)} keep post-training's rounding: {', '.join(done.left)}"
            )
            break
        fit = LayerFit(
            LayerGeometry.of(layer.node, layer.float_weight.shape),
            int8.tensor(layer.node.input[0]),
            targets.tensor(layer.target),
            layer.clip,
            layer.float_weight,
            layer.weight_scale,
        )
        w_int = torch.from_numpy(numpy_helper.to_array(inits[layer.weight]).astype(np.float32))
        bias = torch.from_numpy((numpy_helper.to_array(inits[layer.bias]) * layer.bias_scale).astype(np.float32))
        before = fit.error(w_int * fit.scale, bias, check)
        moments = fit.moments(learn)
        if s.solver == "adaround":
            new_int, steps = adaround(fit, moments, bias, w_int, s.fit())
        else:
            new_int, steps = ordered_rounding(fit, moments, bias, w_int), 0
        new_bias = fit.refit_bias(new_int * fit.scale, bias, learn)
        after = fit.error(new_int * fit.scale, new_bias, check)
        done.steps.append(steps)
        done.settled += s.solver == "adaround" and steps < s.steps
        if after < before:
            done.improved += 1
            done.error_ratios.append(after / max(before, 1e-30))
            _write(layer, inits, new_int, new_bias)
        if (k + 1) % 10 == 0 and k + 1 < len(layers):
            log(
                f"    reconstructed {k + 1}/{len(layers)} layers ({sum(done.steps)} steps) in "
                f"{time.perf_counter() - t0:.0f} s"
            )
    onnx.save(model, str(path))
    done.seconds = time.perf_counter() - t0
    done.cpu_seconds = time.process_time() - cpu0
    return done
