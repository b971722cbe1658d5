"""The trial bench: every int8 candidate is written, measured on the *search* part of the validation images
against fp32, and ranked the one way every step ranks (the recipes, each repair's keep rule, the float-node search
and the final choice); the pipeline grades the pick again on held-out images the bench never saw.

A trial is one recipe quantized (``qdq.static_quantizer``) and measured with one onnxruntime session
(``trial_eval``): accuracy, batch-1 latency, and how much of it onnxruntime really runs in int8. The same recipe is
never measured twice. A trial that runs mostly in float (under ``MIN_INT8_FRACTION`` of its convs in int8) is
never chosen.

Ranking (``ranked``; ``better`` is the one keep rule of the repairs): a lower drop wins only when the search images
resolve it (the paired 95% interval of the two trials' per-image outcomes excludes zero, ``clearly_less_accurate``);
otherwise the lower logit error, which every image measures, wins. (On Lite0, 143 search images ranked a per-tensor
calibration 3 answers behind MinMax and dropped it; on 254 unseen crops its 26% lower logit error was the better
file: 98.8% vs 98.4%.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.export.quant.grading.conv_counts import ConvCounts
from edgecls.export.quant.grading.evaluate import Accuracy
from edgecls.export.quant.grading.fused_graph import float_compute_nodes
from edgecls.export.quant.grading.verdict import paired_difference_interval
from edgecls.export.quant.qdq.static_quantizer import StaticQuantizer
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.export.quant.search.paired_timing import RUNS_PER_BLOCK, TimeRatio, time_ratio
from edgecls.export.quant.search.speed_vs_fp32 import SpeedVsFp32
from edgecls.export.quant.search.trial_eval import measure_trial
from edgecls.runtime.accuracy_budget import within_budget
from edgecls.runtime.inference.latency import DEFAULT_WARMUP
from edgecls.runtime.inference.scores import top1_accuracy

Log = Callable[[str], None]
#: A model whose convs mostly run in float is never chosen.
MIN_INT8_FRACTION = 0.5


@dataclass
class Trial:
    recipe: QuantRecipe
    accuracy: Accuracy
    drop_points: float  # fp32 score - int8 score on the search images, in percentage points
    path: Path  # scratch file
    latency_p50_ms: float
    fusion: dict[str, Any]  # fused_graph.fusion_counts (with its "graph" signature)
    float_nodes: list[str] = field(default_factory=list)  # compute nodes in float, read back from ``path``
    # bool[M]: per search image, what the score averages (evaluate.scored_outcomes); None: compared by drop only
    outcomes: np.ndarray | None = field(default=None, repr=False)
    convs: ConvCounts | None = None  # the fused counts with why (the file's float convs vs this CPU's fusions)

    @property
    def label(self) -> str:
        """The recipe's description with the float-node count of the written graph (the one count reported)."""
        return self.recipe.describe(len(self.float_nodes))

    @property
    def graph(self) -> str:
        return str(self.fusion.get("graph", self.path))

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.label,
            "calibrate_method": self.recipe.calibrate_method,
            "reduce_range": self.recipe.reduce_range,
            "bias_correction": self.recipe.bias_correction,
            "reconstruct": self.recipe.reconstruct,
            "fine_tuned": self.recipe.fine_tuned,
            "nodes_kept_float": len(self.float_nodes),
            "graph": self.graph,
            "drop_points": round(self.drop_points, 3),
            "latency_p50_ms": round(self.latency_p50_ms, 3),
            "int8_conv_fraction": self.fusion["int8_fraction"],
            **({"convs": self.convs.line()} if self.convs else {}),
            **self.accuracy.to_dict(),
        }


def fits(trial: Trial, max_drop: float) -> bool:
    """Within the budget on the search images."""
    return within_budget(trial.drop_points, max_drop)


def eligible(trial: Trial) -> bool:
    """Mostly int8 as onnxruntime runs it."""
    return trial.fusion["int8_fraction"] >= MIN_INT8_FRACTION


def acceptable(trial: Trial, max_drop: float) -> bool:
    return fits(trial, max_drop) and eligible(trial)


def clearly_less_accurate(a: Trial, b: Trial) -> bool:
    """``a`` scores below ``b`` on the same search images by more than chance explains: the 95% interval of the
    paired difference of their per-image outcomes (Newcombe, ``verdict.paired_difference_interval``) lies
    above zero. Without outcomes, any lower score is "clearly" lower (the drop decides, as it always did)."""
    if a.outcomes is None or b.outcomes is None or len(a.outcomes) != len(b.outcomes) or not len(a.outcomes):
        return a.drop_points > b.drop_points
    lower, _ = paired_difference_interval(b.outcomes, a.outcomes)  # b's score minus a's
    return lower > 0


def _accuracy_key(t: Trial) -> tuple[float, float, int]:
    return round(t.drop_points, 6), t.accuracy.relative_error, len(t.float_nodes)


def ranked(trials: list[Trial]) -> list[Trial]:
    """Most accurate first. The trials not clearly less accurate than the lowest-drop one come first, by logit
    error, then fewest float nodes; then the rest by drop."""
    top = min(trials, key=_accuracy_key)
    behind = [t for t in trials if clearly_less_accurate(t, top)]
    level = [t for t in trials if t not in behind]
    return sorted(level, key=lambda t: (t.accuracy.relative_error, len(t.float_nodes))) + sorted(
        behind, key=_accuracy_key
    )


def better(candidate: Trial, current: Trial) -> bool:
    """The keep rule of every repair: ``candidate`` measures better than ``current`` on the search images."""
    return ranked([current, candidate])[0] is candidate


@dataclass
class TrialBench:
    """Writes and measures trials on the search images: float32[N, 3, h, w] ``inputs``, int64[N] ``labels`` or None,
    fp32's float32[N, C] ``fp32_logits``; ``decisive``: bool[N], the unlabelled images fp32 decides."""

    quantizer: StaticQuantizer | None  # None: only ranks and times trials made elsewhere (tests)
    inputs: np.ndarray
    labels: np.ndarray | None
    fp32_logits: np.ndarray
    workdir: Path
    log: Log = print
    precise: bool = False  # accuracy with onnxruntime's exact kernels (the target is not this CPU)
    latency: tuple[int, int] = (20, 5)  # each trial's own p50 (the frontier's speed axis): runs, warm-up
    # Interleaved timing (paired_timing): timed calls per block, warm-up calls per session
    paired_timing: tuple[int, int] = (RUNS_PER_BLOCK, DEFAULT_WARMUP)
    fp32_path: Path | None = None  # the reference every pick is timed against (None: not timed)
    decisive: np.ndarray | None = None
    fine_tuned: StaticQuantizer | None = None  # the QAT-fine-tuned weights' quantizer (repairs/qat.py)
    trials: list[Trial] = field(default_factory=list)
    _by_key: dict[tuple[Any, ...], Trial] = field(default_factory=dict)

    @property
    def fp32_score(self) -> float:
        return top1_accuracy(self.fp32_logits, self.labels) if self.labels is not None else 1.0

    def quantizer_for(self, recipe: QuantRecipe) -> StaticQuantizer:
        """The quantizer of the float weights ``recipe`` starts from."""
        quantizer = self.fine_tuned if recipe.fine_tuned else self.quantizer
        assert quantizer is not None, f"no quantizer for {recipe.describe()}"
        return quantizer

    def quantize(self, recipe: QuantRecipe, path: Path) -> Path:
        return self.quantizer_for(recipe).quantize(recipe, path)

    def try_recipe(self, recipe: QuantRecipe) -> Trial:
        """Quantize ``recipe`` and measure it on the search images (once per distinct recipe)."""
        if recipe.key() in self._by_key:  # the same model under another name: measured once
            return self._by_key[recipe.key()]
        path = self.quantize(recipe, self.workdir / f"trial-{len(self.trials):03d}.onnx")
        got = measure_trial(
            path, self.inputs, (self.labels, self.fp32_logits), precise=self.precise, latency=self.latency,
            decisive=self.decisive,
        )  # fmt: skip
        acc, p50 = got.accuracy, got.latency_p50_ms
        drop = 100.0 * (self.fp32_score - acc.score)
        trial = Trial(recipe, acc, drop, path, p50, got.fusion, float_compute_nodes(path), got.outcomes, got.convs)
        self.trials.append(trial)
        self._by_key[recipe.key()] = trial
        what = "top-1" if self.labels is not None else "agreement" if self.decisive is None else "decisive agreement"
        self.log(
            f"  {trial.label}: {what} {100 * acc.score:.2f}% (drop {trial.drop_points:+.2f} pts), "
            f"p50 {p50:.2f} ms, {got.convs.line()}"
        )
        return trial

    def ratio(self, a: Path, b: Path) -> TimeRatio:
        """Interleaved timing of two files (``time(a) / time(b)`` per round)."""
        runs, warmup = self.paired_timing
        return time_ratio(a, b, runs=runs, warmup=warmup)

    def versus_fp32(self, path: Path) -> SpeedVsFp32:
        assert self.fp32_path is not None
        return SpeedVsFp32(self.ratio(path, self.fp32_path))
