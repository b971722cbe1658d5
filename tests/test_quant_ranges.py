"""Activation ranges from the one shared statistics pass: the same MinMax ranges onnxruntime's calibrator finds,
and a per-tensor choice of calibration method that clips outliers only where that quantizes the tensor better."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from edgecls.export.onnx_export import export_to_onnx
from edgecls.export.quant.grading.image_sets import ImageList
from edgecls.export.quant.qdq.activation_stats import TensorStats
from edgecls.export.quant.qdq.range_choice import choose_ranges, fake_quant_mse
from edgecls.export.quant.qdq.static_quantizer import StaticQuantizer, _calibration_reader
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.runtime.contract.model_contract import ModelContract

CONTRACT = ModelContract(labels=("a", "b"), input_size=(24, 24), resize_mode="stretch")


def _images(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(n)]


def _activation_scales(path) -> dict[str, float]:
    """QuantizeLinear input tensor -> its scale, for every activation QuantizeLinear of a QDQ graph."""
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    return {n.input[0]: float(inits[n.input[1]]) for n in m.graph.node if n.op_type == "QuantizeLinear"}


def test_shared_minmax_ranges_are_what_onnxruntimes_calibrator_finds(tmp_path):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU6(), nn.Conv2d(8, 8, 3, groups=8), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2)
    )
    net(torch.zeros(1, 3, 24, 24))
    export_to_onnx(net.eval(), CONTRACT, tmp_path / "m.onnx", exporter="torchscript")
    calib = ImageList("noise", _images(16, 0), None, [])
    quantizer = StaticQuantizer(tmp_path / "m.onnx", calib, CONTRACT, tmp_path / "work")
    ours = quantizer.quantize(QuantRecipe("u8s8"), tmp_path / "ours.onnx")
    quantize_static(
        str(quantizer.pre_path),
        str(tmp_path / "ort.onnx"),
        _calibration_reader(calib, CONTRACT, quantizer.input_name),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    theirs = _activation_scales(tmp_path / "ort.onnx")
    mine = _activation_scales(ours)
    assert mine.keys() == theirs.keys() and len(mine) >= 4
    for name, scale in theirs.items():
        assert abs(mine[name] - scale) <= 1e-5 * scale, name


def _stats(sample: np.ndarray) -> TensorStats:
    return TensorStats(np.array([sample.min()], np.float32), np.array([sample.max()], np.float32), sample, None)


def test_per_tensor_choice_clips_outliers_only_where_it_pays():
    rng = np.random.default_rng(0)
    heavy = rng.standard_t(3, 200_000).astype(np.float32)  # a few far values stretch the MinMax range
    uniform = rng.uniform(-1, 1, 200_000).astype(np.float32)
    ranges, methods = choose_ranges({"heavy": _stats(heavy), "uniform": _stats(uniform)})
    assert methods["uniform"] == "MinMax" and ranges["uniform"] == (float(uniform.min()), float(uniform.max()))
    assert methods["heavy"].startswith("Percentile")
    lo, hi = ranges["heavy"]
    assert hi - lo < 0.7 * float(heavy.max() - heavy.min())
    assert fake_quant_mse(heavy, lo, hi) < 0.8 * fake_quant_mse(heavy, float(heavy.min()), float(heavy.max()))


def test_equalisation_scales_divide_the_per_channel_extremes():
    stats = TensorStats(np.array([0.0, -1.0], np.float32), np.array([4.0, 1.0], np.float32), np.zeros(0), 1)
    ranges, methods = choose_ranges({"t": stats}, {"t": np.array([4.0, 0.5], np.float32)})
    assert ranges["t"] == (-2.0, 2.0) and methods["t"] == "MinMax"
