"""Activation statistics of a float ONNX graph, collected in one pass over the calibration images.

Every int8 trial of the budget search needs activation ranges; which ones depends on the recipe (plain MinMax,
a per-tensor choice of calibration method, cross-layer equalisation that rescales some channels). One pass of
the float graph with every activation tensor exposed as an output gives, per tensor:

- per-channel minimum and maximum (axis 1 of 4-D tensors; a single channel otherwise), exact over all images:
  the MinMax range of the tensor is their min/max, and the range after equalisation divides channel c by s_c;
- a strided sample of its values (``SAMPLE_PER_IMAGE`` per image): enough for percentile ranges and for the
  quantization error of a candidate range (``range_choice``).

The ranges are handed to ``onnxruntime.quantization.quantize_static`` through its calibration cache file, so
onnxruntime's own calibrator (one session and one pass per calibration method) is not run at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

SAMPLE_PER_IMAGE = 512  # values kept per tensor and image: ~160k per tensor for 320 images


@dataclass
class TensorStats:
    """One activation tensor over the calibration images."""

    channel_min: np.ndarray  # float32[C]
    channel_max: np.ndarray  # float32[C]
    sample: np.ndarray  # float32[S]: strided values of the tensor (all channels)
    channel_axis: int | None  # 1 for [N, C, ...] tensors, None for a single channel

    @property
    def range(self) -> tuple[float, float]:
        """(min, max) over every value: the MinMax calibration range."""
        return float(self.channel_min.min()), float(self.channel_max.max())


@dataclass
class ActivationStats:
    tensors: dict[str, TensorStats] = field(default_factory=dict)
    images: int = 0


def activation_tensors(model: onnx.ModelProto) -> list[str]:
    """Float tensors produced or read by nodes, except initializers: what onnxruntime's calibrators select."""
    inits = {i.name for i in model.graph.initializer}
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    infos = {v.name: v for v in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    names: list[str] = []
    for node in model.graph.node:
        for t in [*node.input, *node.output]:
            info = infos.get(t)
            if not t or t in inits or info is None or info.type.tensor_type.elem_type not in float_types:
                continue
            names.append(t)
    return list(dict.fromkeys(names))


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)


def _numel_per_image(info: onnx.ValueInfoProto) -> int | None:
    dims = info.type.tensor_type.shape.dim
    if len(dims) < 2 or not all(d.HasField("dim_value") for d in dims[1:]):
        return None
    return int(np.prod([d.dim_value for d in dims[1:]]))


def _augmented(model: onnx.ModelProto, names: list[str]) -> tuple[bytes, dict[str, tuple[str, str, str]]]:
    """A copy of ``model`` that also outputs, per tensor, its per-channel min and max (ReduceMin/ReduceMax
    inside onnxruntime, no full tensor copied out) and a strided sample of its values (Reshape + Slice).
    Returns the serialized model and ``{tensor: (min output, max output, sample output)}``."""
    from onnx import helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    infos = {v.name: v for v in [*m.graph.value_info, *m.graph.input, *m.graph.output]}
    axes_in_input = _opset(m) >= 18
    new_inits = [numpy_helper.from_array(np.array([-1], np.int64), "stats__flat")]
    outputs: dict[str, tuple[str, str, str]] = {}
    for k, name in enumerate(names):
        rank = len(infos[name].type.tensor_type.shape.dim)
        per_image = _numel_per_image(infos[name])
        if rank < 3 or per_image is None or per_image <= SAMPLE_PER_IMAGE:
            outputs[name] = (name, name, name)  # small (logits, pooled features): fetched whole
            if name not in {o.name for o in m.graph.output}:
                m.graph.output.append(infos[name])
            continue
        axes = [0, *range(2, rank)]
        outs = (f"stats__{k}_min", f"stats__{k}_max", f"stats__{k}_sample")
        for op, out in zip(("ReduceMin", "ReduceMax"), outs[:2], strict=True):
            if axes_in_input:
                new_inits.append(numpy_helper.from_array(np.array(axes, np.int64), f"{out}_axes"))
                m.graph.node.append(helper.make_node(op, [name, f"{out}_axes"], [out], keepdims=0))
            else:
                m.graph.node.append(helper.make_node(op, [name], [out], axes=axes, keepdims=0))
        step = max(1, per_image // SAMPLE_PER_IMAGE)
        for suffix, value in (("start", step // 2), ("end", np.iinfo(np.int64).max), ("step", step), ("axis", 0)):
            new_inits.append(numpy_helper.from_array(np.array([value], np.int64), f"{outs[2]}_{suffix}"))
        m.graph.node.append(helper.make_node("Reshape", [name, "stats__flat"], [f"{outs[2]}_flat"]))
        m.graph.node.append(
            helper.make_node(
                "Slice",
                [f"{outs[2]}_flat", *(f"{outs[2]}_{x}" for x in ("start", "end", "axis", "step"))],
                [outs[2]],
            )
        )
        elem = infos[name].type.tensor_type.elem_type
        m.graph.output.extend(helper.make_tensor_value_info(o, elem, None) for o in outs)
        outputs[name] = outs
    m.graph.initializer.extend(new_inits)
    return m.SerializeToString(), outputs


def collect_stats(
    model_path: str | os.PathLike[str],
    batches: Iterable[np.ndarray],
    names: list[str] | None = None,
) -> ActivationStats:
    """Run the float graph at ``model_path`` over ``batches`` (each float32[B, 3, h, w]) once and return the
    statistics of ``names`` (default: every activation tensor)."""
    import onnxruntime as ort

    from edgecls.runtime.providers.session import session_options

    model = onnx.shape_inference.infer_shapes(onnx.load(str(model_path)))  # shapes say how to sample each tensor
    blob, outputs = _augmented(model, names or activation_tensors(model))
    so = session_options()
    # The exposed tensors must keep their values: only optimisations that cannot remove them.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(blob, sess_options=so, providers=["CPUExecutionProvider"])
    input_name = sess.get_inputs()[0].name
    fetch = list(dict.fromkeys(o for outs in outputs.values() for o in outs))
    mins: dict[str, np.ndarray] = {}
    maxs: dict[str, np.ndarray] = {}
    samples: dict[str, list[np.ndarray]] = {n: [] for n in outputs}
    images = 0
    for x in batches:
        got = dict(zip(fetch, sess.run(fetch, {input_name: x}), strict=True))
        for name, (o_min, o_max, o_sample) in outputs.items():
            if o_min == name:  # fetched whole: one channel
                lo, hi = np.atleast_1d(got[name].min()), np.atleast_1d(got[name].max())
                got[o_sample] = got[name].reshape(-1)
            else:
                lo, hi = got[o_min], got[o_max]
            lo, hi = lo.astype(np.float32), hi.astype(np.float32)
            mins[name] = lo if name not in mins else np.minimum(mins[name], lo)
            maxs[name] = hi if name not in maxs else np.maximum(maxs[name], hi)
            samples[name].append(got[o_sample].astype(np.float32))
        images += x.shape[0]
    stats = ActivationStats(images=images)
    for name in outputs:
        if name in mins:
            axis = None if outputs[name][0] == name else 1
            stats.tensors[name] = TensorStats(mins[name], maxs[name], np.concatenate(samples[name]), axis)
    return stats


def write_range_cache(ranges: dict[str, tuple[float, float]], path: str | os.PathLike[str]) -> Path:
    """Write ``{tensor: (lowest, highest)}`` as onnxruntime's MinMax calibration cache, which
    ``quantize_static(..., calibrate_method=MinMax, calibration_cache_path=path)`` loads instead of calibrating."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData, save_tensors_data

    data = {
        name: TensorData(lowest=np.float32(lo), highest=np.float32(hi))  # type: ignore[arg-type]
        for name, (lo, hi) in ranges.items()
    }
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), path)
    return Path(path)
