"""Cross-layer equalisation on a real exported ONNX graph: the float function is kept (ReLU6's clip respected),
the per-channel weight ranges of the first convs are evened out."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgecls.export.onnx_export import export_to_onnx
from edgecls.export.parity import onnx_logits
from edgecls.export.quant.qdq.activation_stats import collect_stats
from edgecls.export.quant.repairs.equalize import equalize, equalized_range, find_pairs, weight_range_spread
from edgecls.runtime.contract.model_contract import ModelContract

CONTRACT = ModelContract(
    labels=("a", "b", "c"), input_size=(24, 24), resize_mode="stretch", mean=(0, 0, 0), std=(1, 1, 1)
)
FIRING = 5  # the depthwise channel whose ReLU6 clip is reached on every image


class _Separable(nn.Module):
    """stem conv -> ReLU -> depthwise conv -> ReLU6 -> pointwise conv -> pool -> linear. The depthwise channels'
    weights span three decades (what BatchNorm folding leaves in MobileNets); channel FIRING is so large that
    its ReLU6 clips: scaling it would change the network."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.head = nn.Linear(16, 3)
        with torch.no_grad():
            self.dw.weight.mul_(torch.logspace(-3, 0, 8).reshape(8, 1, 1, 1))
            self.dw.weight[FIRING] = 2.0
            self.dw.bias[FIRING] = 8.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(self.dw(torch.relu(self.stem(x))), 0.0, 6.0)
        return self.head(self.pw(x).mean((2, 3)))


@pytest.fixture(scope="module")
def separable(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cle") / "model.onnx"
    export_to_onnx(_Separable().eval(), CONTRACT, path, exporter="torchscript")
    rng = np.random.default_rng(0)
    calib = rng.uniform(0, 1, (32, 3, 24, 24)).astype(np.float32)
    held_out = rng.uniform(0, 1, (16, 3, 24, 24)).astype(np.float32)
    return path, calib, held_out


def test_equalisation_keeps_the_float_outputs_and_evens_the_weight_ranges(separable, tmp_path):
    path, calib, held_out = separable
    model = onnx.load(str(path))
    pairs = find_pairs(model)
    assert sorted(p.clip_max for p in pairs if p.clip_max is not None) == [6.0]  # the ReLU6 pair
    assert len(pairs) == 2  # stem -> ReLU -> dw and dw -> ReLU6 -> pw
    stats = collect_stats(path, [calib[i : i + 8] for i in range(0, len(calib), 8)])
    maxima = {k: v.channel_max for k, v in stats.tensors.items() if v.channel_axis == 1}
    equalized, scales = equalize(model, maxima)
    onnx.save(equalized, str(tmp_path / "eq.onnx"))

    before, after = onnx_logits(path, held_out), onnx_logits(tmp_path / "eq.onnx", held_out)
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4 * np.abs(before).max())
    relu6 = next(p for p in pairs if p.clip_max is not None)
    assert scales[relu6.pre_act][FIRING] == 1.0  # its clip fires: left alone
    assert np.ptp(np.log10(scales[relu6.pre_act])) > 1.0  # the other channels really were rescaled
    assert weight_range_spread(equalized, pairs) < weight_range_spread(model, pairs) - 0.5


def test_relu6_pairs_are_left_alone_without_calibration_maxima(separable):
    path, _, _ = separable
    model = onnx.load(str(path))
    _, scales = equalize(model, None)
    relu6 = next(p for p in find_pairs(model) if p.clip_max is not None)
    assert relu6.pre_act not in scales and scales  # only the ReLU pair is equalised


def test_the_equalised_graphs_ranges_come_from_the_float_graphs_statistics(separable, tmp_path):
    """range_sources never calibrates the equalised graph: its MinMax ranges are the float graph's per-channel
    extremes divided by the scales. Calibrating the equalised graph itself must give the same ranges."""
    path, calib, _ = separable
    batches = [calib[i : i + 8] for i in range(0, len(calib), 8)]
    stats = collect_stats(path, batches)
    maxima = {k: v.channel_max for k, v in stats.tensors.items() if v.channel_axis == 1}
    equalized, scales = equalize(onnx.load(str(path)), maxima)
    onnx.save(equalized, str(tmp_path / "eq.onnx"))
    measured = collect_stats(tmp_path / "eq.onnx", batches).tensors
    assert len(scales) == 4  # both pairs: conv outputs and activation outputs
    moved = []
    for name, s in scales.items():
        derived = equalized_range(stats.tensors[name].channel_min, stats.tensors[name].channel_max, s)
        assert derived == pytest.approx(measured[name].range, rel=1e-4, abs=1e-5), name
        if derived != pytest.approx(stats.tensors[name].range, rel=1e-2):
            moved.append(name)
    assert len(moved) >= 2  # the scales really moved ranges (the ReLU6 output keeps its clip at 6)
