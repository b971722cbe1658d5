"""Per-tensor choice of the calibration method: for every activation tensor, the range (MinMax or a percentile
clip) whose 8-bit quantization reproduces that tensor best on the calibration images.

One global method loses where tensors differ: a percentile clip helps a tensor with a few outliers (its range
spends the 256 levels on values that almost never occur) and hurts one whose extreme values carry the signal
(a clipped ReLU6 channel or a residual sum). So each tensor's candidates are scored by the mean squared error
of asymmetric uint8 fake quantization on that tensor's calibration sample (``activation_stats``), the
same criterion TensorRT's and NNCF's MSE range estimators use, and the best is kept. onnxruntime's Entropy
calibration is not among the candidates: its histogram pass over every tensor is slower than the whole
2-minute budget on two cores.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edgecls.export.quant.qdq.activation_stats import TensorStats
from edgecls.export.quant.repairs.equalize import equalized_range

#: Candidate calibration methods: name -> upper percentile of the values kept (100 = MinMax).
CANDIDATES: dict[str, float] = {"MinMax": 100.0, "Percentile 99.999": 99.999, "Percentile 99.99": 99.99}
LEVELS = 255  # uint8 activations
#: A clip replaces MinMax only when it cuts the tensor's error by at least this share: a clip of the last
#: 0.01% of a tensor without outliers always scores marginally better on the sample it was taken from.
MIN_GAIN = 0.9


def fake_quant_mse(x: np.ndarray, lo: float, hi: float, levels: int = LEVELS) -> float:
    """Mean squared error of asymmetric uniform quantization of float[S] ``x`` to ``levels`` steps over
    [lo, hi] (0 always representable, as onnxruntime makes it), values outside clipped."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        return float(np.mean(x.astype(np.float64) ** 2))
    scale = (hi - lo) / levels
    zero = np.round(-lo / scale)
    q = np.clip(np.round(x / scale) + zero, 0, levels)
    return float(np.mean(((q - zero) * scale - x) ** 2, dtype=np.float64))


def candidate_ranges(stats: TensorStats) -> dict[str, tuple[float, float]]:
    """Each candidate method's (lo, hi) for one tensor; the percentiles come from its value sample."""
    lo_all, hi_all = stats.range
    out = {}
    for name, p in CANDIDATES.items():
        if p >= 100.0 or stats.sample.size == 0:
            out[name] = (lo_all, hi_all)
            continue
        lo, hi = np.percentile(stats.sample, [100.0 - p, p])
        out[name] = (float(lo), float(hi))
    return out


def choose_ranges(
    tensors: Mapping[str, TensorStats], scales: Mapping[str, np.ndarray] | None = None
) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """({tensor: (lo, hi)}, {tensor: chosen method}) minimising each tensor's fake-quant error.

    ``scales``: per-channel factors a tensor was divided by (cross-layer equalisation); its sample is then
    rescaled channel by channel before scoring (the sample is strided over [N, C, ...], so its channel is
    recovered only approximately; such tensors use MinMax of the rescaled per-channel extremes instead)."""
    ranges: dict[str, tuple[float, float]] = {}
    methods: dict[str, str] = {}
    for name, st in tensors.items():
        if scales and name in scales:
            ranges[name] = equalized_range(st.channel_min, st.channel_max, scales[name])
            methods[name] = "MinMax"
            continue
        cands = candidate_ranges(st)
        errors = {m: fake_quant_mse(st.sample, lo, hi) for m, (lo, hi) in cands.items()}
        best = min(errors, key=lambda m: errors[m] / (1.0 if m == "MinMax" else MIN_GAIN))
        ranges[name], methods[name] = cands[best], best
    return ranges, methods
