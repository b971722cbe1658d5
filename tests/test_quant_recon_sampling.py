"""Where layer-wise reconstruction measures a layer (``LayerFit.sample``): a grid of output positions over evenly
spaced images, the same every time, that the moments, the bias re-fit and the acceptance error all read; and the
int8 tensors dequantized in float32 are the same bits as through int32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgecls.export.quant.repairs import layer_fit
from edgecls.export.quant.repairs.layer_fit import LayerFit, LayerGeometry
from edgecls.export.quant.repairs.layer_tensors import dequantized


def _layer(groups: int, images: int = 40, size: int = 62) -> LayerFit:
    """A 3x3 conv (stride 2, pads 1) of 8 channels, ``groups`` groups, on ``images`` random maps."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (images, 8, size, size)).astype(np.float32)
    w = rng.normal(0, 0.3, (8, 8 // groups, 3, 3)).astype(np.float32)
    geometry = LayerGeometry(True, (1, 1, 1, 1), (2, 2), (3, 3), groups)
    padded = torch.nn.functional.pad(torch.from_numpy(x), (1, 1, 1, 1))
    y = torch.nn.functional.conv2d(padded, torch.from_numpy(w), stride=2, groups=groups).numpy() + 0.1
    return LayerFit(geometry, x, y, (-1.5, 1.5), w, np.full(8, 0.02, np.float32))


def test_the_positions_are_a_grid_over_evenly_spaced_images_the_same_every_time(monkeypatch):
    fit = _layer(groups=1)  # 40 images of 31 x 31 outputs: 38,440 positions
    idx = torch.arange(40)
    assert fit.sample(idx)[1] == 1 and torch.equal(fit.sample(idx)[0], idx)  # fewer than the floor: all of them
    monkeypatch.setattr(layer_fit, "POSITIONS", 8000)
    images, t = fit.sample(idx)
    assert t == 2  # every other row and column: 16 x 16 positions an image
    assert len(images) == 32 and images[0] == 0 and images[-1] == 39  # 32 x 256 >= 8000, spread over all 40
    assert torch.equal(images, torch.unique(images))
    again = fit.sample(idx)
    assert again[1] == t and torch.equal(again[0], images)
    # a depthwise layer has its own floor
    dw = _layer(groups=8)
    monkeypatch.setattr(layer_fit, "DEPTHWISE_POSITIONS", 640)  # (and 64 per input at least: 640 for 3 x 3 + bias)
    assert dw.sample(idx)[1] == 7 and len(dw.sample(idx)[0]) == 26  # 5 x 5 positions an image, 26 x 25 >= 640


def test_bias_and_error_are_measured_on_the_sampled_positions_only(monkeypatch):
    fit = _layer(groups=1)
    monkeypatch.setattr(layer_fit, "POSITIONS", 8000)
    idx = torch.arange(40)
    images, t = fit.sample(idx)
    weight, bias = fit.float_weight, torch.zeros(8)
    # by hand: the whole-map output at every t-th row and column of the sampled images
    padded = torch.nn.functional.pad(fit.x[images], (1, 1, 1, 1))
    out = torch.nn.functional.conv2d(padded, weight, bias, stride=2)[:, :, ::t, ::t].clamp(-1.5, 1.5)
    target = fit.y[images][:, :, ::t, ::t].clamp(-1.5, 1.5)
    assert fit.error(weight, bias, idx) == pytest.approx(float(((out - target) ** 2).mean()), rel=1e-5)
    inside = ((out > -1.5) & (out < 1.5)).double()
    want = ((target - out).double() * inside).sum((0, 2, 3)) / inside.sum((0, 2, 3))
    np.testing.assert_allclose(fit.refit_bias(weight, bias, idx).numpy(), want.numpy(), rtol=1e-5, atol=1e-7)
    # the targets are the float outputs + 0.1: the re-fit finds it where nothing is clipped
    assert float(fit.refit_bias(weight, bias, idx).mean()) == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize(
    "dtype,zero", [(np.uint8, 131), (np.uint8, 255), (np.int8, -7), (np.int8, 0), (np.int16, -300)]
)
def test_dequantizing_in_float32_gives_the_same_bits_as_through_int32(dtype, zero):
    info = np.iinfo(dtype)
    q = np.random.default_rng(0).integers(info.min, info.max + 1, (3, 4, 9, 9)).astype(dtype)
    scale = np.array(0.0371, np.float32)
    want = (q.astype(np.int32) - np.int32(zero)).astype(np.float32) * np.float32(scale)
    got = dequantized(q, np.array(zero, dtype), scale)
    assert got.dtype == np.float32 and got.shape == q.shape
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("groups", [1, 8])
def test_the_moments_are_the_layer_error_as_a_quadratic_form(groups):
    """Dense and depthwise (one product per image and group) alike: the error the moments give any weights and
    bias is the squared error of the layer's unclipped output, summed over the positions ``sample`` picks."""
    fit = _layer(groups=groups, images=12, size=20)
    idx = torch.arange(12)
    moments = fit.moments(idx)
    rng = np.random.default_rng(5)
    for _ in range(3):
        weight = fit.float_weight + torch.from_numpy(rng.normal(0, 0.05, fit.float_weight.shape).astype(np.float32))
        bias = torch.from_numpy(rng.normal(0, 0.1, 8).astype(np.float32))
        padded = torch.nn.functional.pad(fit.x, (1, 1, 1, 1))
        out = torch.nn.functional.conv2d(padded, weight, bias, stride=2, groups=groups)
        want = float(((out - fit.y) ** 2).sum() / (fit.y.double() ** 2).sum())
        got, _ = moments.error(fit.grouped(weight, bias))
        assert float(got) == pytest.approx(want, rel=1e-3, abs=1e-5)
