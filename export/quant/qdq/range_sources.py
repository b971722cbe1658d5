"""The float graphs and activation ranges every int8 trial starts from, computed once per quantization.

A trial's recipe says which float graph is quantized (the pre-processed fp32 graph, or its cross-layer
equalised copy, ``repairs.equalize``) and how activation ranges are chosen (``MinMax`` over the calibration
images, or ``PerTensor``: each tensor's best of MinMax and percentile clips, ``range_choice``). All of
them come from one pass of the float graph over the calibration images (``activation_stats``): the
equalised graph's ranges are the same per-channel extremes divided by the equalisation scales, so it is never
calibrated again. The ranges reach ``quantize_static`` as its calibration cache file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx

from edgecls.export.quant.qdq.activation_stats import ActivationStats, collect_stats, write_range_cache
from edgecls.export.quant.qdq.range_choice import choose_ranges
from edgecls.export.quant.repairs.equalize import equalize, equalized_range, find_pairs, weight_range_spread

#: Calibration methods computed here from the shared statistics (others go to onnxruntime's calibrators).
OWN_METHODS = ("MinMax", "PerTensor")


class TrialSources:
    """Lazily computed, shared by every trial: statistics, the equalised graph, and range cache files."""

    def __init__(self, pre_path: Path, workdir: Path, batches: Callable[[], Iterator[np.ndarray]]) -> None:
        self.pre_path = pre_path
        self.workdir = workdir
        self._batches = batches  # a fresh iterator of float32[B, 3, h, w] calibration batches
        self._stats: ActivationStats | None = None
        self._scales: dict[str, np.ndarray] | None = None
        self.equalize_note = ""
        self.method_counts: dict[str, dict[str, int]] = {}  # (PerTensor) method -> tensors that chose it

    @property
    def stats(self) -> ActivationStats:
        if self._stats is None:
            self._stats = collect_stats(self.pre_path, self._batches())
        return self._stats

    def _equalized(self) -> tuple[Path, dict[str, np.ndarray]]:
        """The cross-layer equalised copy of the pre-processed graph (written on first use) and its scales."""
        path = self.workdir / "preprocessed-equalized.onnx"
        if self._scales is None:
            model = onnx.load(str(self.pre_path))
            maxima = {k: v.channel_max for k, v in self.stats.tensors.items() if v.channel_axis == 1}
            equalized, self._scales = equalize(model, maxima)
            onnx.save(equalized, str(path))
            pairs = find_pairs(model)
            self.equalize_note = (
                f"{len(pairs)} conv pairs, {len(self._scales) // 2} equalised; weight-range spread of their first "
                f"convs {weight_range_spread(model, pairs):.2f} -> {weight_range_spread(equalized, pairs):.2f} "
                "decades"
            )
        return path, self._scales

    def source(self, equalized: bool) -> Path:
        """The float graph a trial quantizes."""
        return self._equalized()[0] if equalized else self.pre_path

    def range_cache(self, method: str, equalized: bool) -> Path:
        """onnxruntime calibration cache with the ranges of ``method`` for the chosen float graph."""
        path = self.workdir / f"ranges-own-{method}-{'eq' if equalized else 'plain'}.json"
        if path.is_file():
            return path
        scales = self._equalized()[1] if equalized else {}
        if method == "PerTensor":
            ranges, chosen = choose_ranges(self.stats.tensors, scales)
            counts: dict[str, int] = {}
            for m in chosen.values():
                counts[m] = counts.get(m, 0) + 1
            self.method_counts[f"{method}-{equalized}"] = counts
        else:
            ranges = {
                name: equalized_range(st.channel_min, st.channel_max, scales.get(name))
                for name, st in self.stats.tensors.items()
            }
        return write_range_cache(ranges, path)
