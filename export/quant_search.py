"""The accuracy budget: find the int8 model that stays within ``max_drop`` with the fewest nodes in float.

Steps (each measured on the validation images, against the fp32 model's own score):
1. the recipes the CPU's instruction set suggests (``quant_isa.candidate_recipes``), MinMax calibration;
2. if the best is over budget: the same recipe with Percentile calibration (clips activation outliers,
   which is what usually breaks depthwise networks once weights are per-channel);
3. if still over budget: per-node sensitivity - quantize with one node at a time kept in float and measure
   the logit error on a subset - then keep the k most sensitive nodes in float, k = 1, 2, 4, ... until the
   budget holds, and bisect back to the fewest k that holds.
If nothing holds the best model found is still returned, with ``budget_met = False``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from edgecls.export.parity import onnx_logits
from edgecls.export.quant_eval import Accuracy, measure_accuracy, relative_error
from edgecls.export.quant_isa import QuantRecipe
from edgecls.export.quant_static import StaticQuantizer, float_units, quantized_compute_nodes
from edgecls.export.run_data import evenly_spaced

Log = Callable[[str], None]


@dataclass
class Trial:
    recipe: QuantRecipe
    accuracy: Accuracy
    drop_points: (
        float  # fp32 score - int8 score, in percentage points (top-1, or disagreement without labels)
    )
    path: Path  # scratch file

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.describe(),
            "calibrate_method": self.recipe.calibrate_method,
            "reduce_range": self.recipe.reduce_range,
            "nodes_kept_float": len(self.recipe.nodes_to_exclude),
            "drop_points": round(self.drop_points, 3),
            **self.accuracy.to_dict(),
        }


@dataclass
class SearchResult:
    best: Trial
    budget_met: bool
    trials: list[Trial]
    sensitivity: list[tuple[str, float]] = field(default_factory=list)  # (node, logit error with it in float)


@dataclass
class BudgetSearch:
    quantizer: StaticQuantizer
    inputs: np.ndarray  # float32[N, 3, h, w] validation inputs
    labels: np.ndarray | None  # int64[N] or None
    fp32_logits: np.ndarray  # float32[N, C]
    max_drop: float  # percentage points
    workdir: Path
    log: Log = print
    sensitivity_images: int = 64
    max_float_fraction: float = 0.5  # never keep more than this share of the quantized nodes in float
    trials: list[Trial] = field(default_factory=list)
    units: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node -> nodes excluded with it

    @property
    def fp32_score(self) -> float:
        return float(np.mean(self.fp32_logits.argmax(1) == self.labels)) if self.labels is not None else 1.0

    def _fits(self, trial: Trial) -> bool:
        return trial.drop_points <= self.max_drop + 1e-9

    def _try(self, recipe: QuantRecipe) -> Trial:
        path = self.workdir / f"trial-{len(self.trials):03d}.onnx"
        self.quantizer.quantize(recipe, path)
        acc, _ = measure_accuracy(path, self.inputs, self.labels, self.fp32_logits)
        trial = Trial(recipe, acc, 100.0 * (self.fp32_score - acc.score), path)
        self.trials.append(trial)
        what = "top-1" if self.labels is not None else "agreement"
        self.log(
            f"  {recipe.describe()}: {what} {100 * acc.score:.2f}% (drop {trial.drop_points:+.2f} pts, "
            f"agreement {100 * acc.agreement:.1f}%)"
        )
        return trial

    def _best(self) -> Trial:
        # Lowest drop; among equals the fewest float nodes, then the earliest (the ISA's preferred recipe).
        return min(self.trials, key=lambda t: (round(t.drop_points, 6), len(t.recipe.nodes_to_exclude)))

    def run(self, candidates: list[QuantRecipe]) -> SearchResult:
        for recipe in candidates:
            self._try(recipe)
        best = self._best()
        if not self._fits(best):
            self._try(
                dataclasses.replace(
                    best.recipe, name=f"{best.recipe.name}-percentile", calibrate_method="Percentile"
                )
            )
            best = self._best()
        if self._fits(best):
            return SearchResult(best, True, self.trials)
        ranking = self.sensitivity(best)
        fitting = self._fewest_float_nodes(best.recipe, [name for name, _ in ranking])
        final = fitting or self._best()
        return SearchResult(final, fitting is not None, self.trials, ranking)

    def sensitivity(self, base: Trial) -> list[tuple[str, float]]:
        """Nodes ranked by how much keeping each one (with its input producers) in float reduces the logit
        error on a subset of the validation images; most responsible first."""
        recipe = base.recipe
        nodes = quantized_compute_nodes(base.path)
        self.units = float_units(self.quantizer.pre_path, nodes)
        idx = evenly_spaced(len(self.inputs), self.sensitivity_images)
        sub_inputs, sub_ref = self.inputs[idx], self.fp32_logits[idx]
        self.log(
            f"  over budget: measuring the sensitivity of {len(nodes)} quantized nodes on {len(idx)} images"
        )
        scored = []
        path = self.workdir / "sensitivity.onnx"
        for name in nodes:
            excluded = tuple(dict.fromkeys(recipe.nodes_to_exclude + self.units[name]))
            self.quantizer.quantize(dataclasses.replace(recipe, nodes_to_exclude=excluded), path)
            scored.append((name, relative_error(onnx_logits(path, sub_inputs), sub_ref)))
        scored.sort(key=lambda item: item[1])
        return scored

    def _exclusion(self, ranked: list[str], k: int) -> tuple[str, ...]:
        """Union of the float units of the k most sensitive nodes, in rank order, without repeats."""
        names: list[str] = []
        for node in ranked[:k]:
            names += self.units.get(node, (node,))
        return tuple(dict.fromkeys(names))

    def _fewest_float_nodes(self, recipe: QuantRecipe, ranked: list[str]) -> Trial | None:
        """Smallest k such that keeping ranked[:k] in float meets the budget (doubling, then bisection)."""
        limit = max(1, math.ceil(len(ranked) * self.max_float_fraction))
        results: dict[int, Trial] = {}

        def attempt(k: int) -> Trial:
            if k not in results:
                results[k] = self._try(
                    dataclasses.replace(
                        recipe, name=f"{recipe.name}-float{k}", nodes_to_exclude=self._exclusion(ranked, k)
                    )
                )
            return results[k]

        lo, k = 0, 1
        while k <= limit and not self._fits(attempt(k)):
            lo, k = k, k * 2
        if k > limit:
            if limit not in results and limit > lo and self._fits(attempt(limit)):
                k = limit
            else:
                return None
        hi = k
        while hi - lo > 1:  # invariant: lo fails (or is 0), hi fits
            mid = (lo + hi) // 2
            if self._fits(attempt(mid)):
                hi = mid
            else:
                lo = mid
        return results[hi]
