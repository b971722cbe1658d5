"""The accuracy budget: among int8 models within ``max_drop``, ship the fastest (latency measured).

Steps (each trial measured on the *search* part of the validation images, against the fp32 model's score;
the caller grades the chosen model again on held-out images the search never saw):
1. the recipes the target suggests (``recipes.candidate_recipes``), MinMax calibration;
2. the best of them with bias correction (``bias_correction``), then with cross-layer equalisation
   (``equalize``), then with a per-tensor choice of calibration method (``range_choice``): each
   kept only if it measures better;
3. if over budget: per-node sensitivity - the logit error on a subset with one node computing in float
   (``sensitivity``, graph surgery on the QDQ graph), cached on disk when a cache folder is given - then
   keep the k most sensitive nodes in float, k = 1, 2, 4, ... until the budget holds, and bisect back.
(onnxruntime's own Percentile/Entropy calibrators are not run: their histogram pass over every tensor is slower
than the whole 2-minute goal; percentile clips come from the shared statistics pass instead, per tensor.)
Every trial's latency and its share of convs onnxruntime really runs in int8 are measured; a trial that runs
mostly in float (under ``min_int8_fraction``) is never chosen. The same recipe is never run twice.

Comparing accuracy (``_ranked``, every "better" above): a lower drop wins only when the search images resolve
it (the paired 95% interval of the two trials' per-image outcomes excludes zero, ``clearly_less_accurate``);
otherwise the lower logit error, which every image measures, wins.

Choosing (``choose``): trials whose fused graphs are identical (``fused_graph.graph_signature``: same kernels,
same shapes, only weight values differ) run at the same speed, so among them only accuracy ranks. Between
different graphs, the faster one wins only when interleaved repeated timing (``paired_timing``) shows a gap
that noise cannot cross; otherwise the more accurate one wins. An int8 model slower than its fp32 model is
never the answer: the search says so and offers the frontier's fastest point instead. Within budget, the speed
step (``speed_step``) then keeps float what the profiler finds slower in int8, when that measures faster.
The pick's one timing against fp32 (``speed_vs_fp32``) is what the report and the advice use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.export.quant.fused_graph import float_compute_nodes
from edgecls.export.quant.image_sets import evenly_spaced
from edgecls.export.quant.paired_timing import RUNS_PER_BLOCK, TimeRatio, time_ratio
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.export.quant.sensitivity import rank_nodes
from edgecls.export.quant.speed_step import SpeedStep, faster_int8
from edgecls.export.quant.speed_vs_fp32 import SpeedVsFp32, offer_instead
from edgecls.export.quant.static_quantizer import StaticQuantizer, float_units, quantized_compute_nodes
from edgecls.export.quant.trial_eval import Trial, clearly_less_accurate, measure_trial
from edgecls.export.quant.verdict import within_budget
from edgecls.runtime.inference.latency import DEFAULT_WARMUP
from edgecls.runtime.inference.scores import top1_accuracy

Log = Callable[[str], None]


@dataclass
class SearchResult:
    best: Trial
    budget_met: bool  # on the search images
    trials: list[Trial]
    sensitivity: list[tuple[str, float]] = field(default_factory=list)  # (node, logit error with it in float)
    bias_correction: str = ""  # what the bias-correction comparison found
    refinements: list[str] = field(default_factory=list)  # equalisation, per-tensor calibration: what was found
    choice: list[str] = field(default_factory=list)  # how the pick was made: graphs compared, timed, vs fp32
    speed: SpeedVsFp32 | None = None  # the pick against fp32: the one timing the report and the advice rest on
    speed_step: SpeedStep | None = None  # what the speed step tried (None: it did not run)

    @property
    def slower_than_fp32(self) -> bool:
        """The pick (within budget, nothing faster fits) is slower than fp32 beyond noise."""
        return self.speed is not None and self.speed.slower


@dataclass
class BudgetSearch:
    quantizer: StaticQuantizer
    inputs: np.ndarray  # float32[N, 3, h, w] search images
    labels: np.ndarray | None  # int64[N] or None
    fp32_logits: np.ndarray  # float32[N, C]
    max_drop: float  # percentage points
    workdir: Path
    log: Log = print
    sensitivity_images: int = 16
    precise: bool = False  # accuracy with onnxruntime's exact kernels (the target is not this CPU)
    latency_runs: int = 20  # each trial's own p50 (the frontier's speed axis)
    latency_warmup: int = 5
    # Interleaved timing (paired_timing): timed calls per block, warm-up calls per session
    paired_timing: tuple[int, int] = (RUNS_PER_BLOCK, DEFAULT_WARMUP)
    min_int8_fraction: float = 0.5  # a model whose convs mostly run in float is never chosen
    max_float_fraction: float = 0.5  # never keep more than this share of the quantized nodes in float
    cache_dir: Path | None = None  # sensitivity rankings, keyed by model, recipe and images
    fp32_path: Path | None = None  # the reference: no int8 pick slower than it (None: not checked)
    decisive: np.ndarray | None = None  # bool[N]: unlabelled images fp32 decides, on which agreement is scored
    # Layer-wise reconstruction of the best recipe (reconstruct.py): "auto" = when it misses the budget, "on", "off"
    reconstruct: str = "auto"
    # The speed step (speed_step.py): only where speed measured here is the target's
    tune_speed: bool = True
    trials: list[Trial] = field(default_factory=list)
    units: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node -> nodes excluded with it
    _by_key: dict[tuple[Any, ...], Trial] = field(default_factory=dict)

    @property
    def fp32_score(self) -> float:
        return top1_accuracy(self.fp32_logits, self.labels) if self.labels is not None else 1.0

    def _fits(self, trial: Trial) -> bool:
        return within_budget(trial.drop_points, self.max_drop)

    def _eligible(self, trial: Trial) -> bool:
        return trial.fusion["int8_fraction"] >= self.min_int8_fraction

    def _try(self, recipe: QuantRecipe) -> Trial:
        if recipe.key() in self._by_key:  # the same model under another name: measured once
            return self._by_key[recipe.key()]
        path = self.workdir / f"trial-{len(self.trials):03d}.onnx"
        self.quantizer.quantize(recipe, path)
        got = measure_trial(
            path,
            self.inputs,
            (self.labels, self.fp32_logits),
            precise=self.precise,
            latency=(self.latency_runs, self.latency_warmup),
            decisive=self.decisive,
        )
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

    @staticmethod
    def _accuracy_key(t: Trial) -> tuple[float, float, int]:
        return round(t.drop_points, 6), t.accuracy.relative_error, len(t.float_nodes)

    def _ranked(self, trials: list[Trial]) -> list[Trial]:
        """Most accurate first. A drop difference the search images cannot resolve does not outrank the logit
        error, which every image measures: the trials not clearly less accurate than the lowest-drop one (paired
        95% interval, ``clearly_less_accurate``) come first, by logit error, then fewest float nodes; then the
        rest by drop. (On Lite0, 143 search images ranked a per-tensor calibration 3 answers behind MinMax and
        dropped it; on 254 unseen crops its 26% lower logit error was the better file: 98.8% vs 98.4%.)"""
        top = min(trials, key=self._accuracy_key)
        behind = [t for t in trials if clearly_less_accurate(t, top)]
        level = [t for t in trials if t not in behind]
        return sorted(level, key=lambda t: (t.accuracy.relative_error, len(t.float_nodes))) + sorted(
            behind, key=self._accuracy_key
        )

    def _per_graph(self, trials: list[Trial]) -> list[Trial]:
        """The most accurate trial of each distinct fused graph, most accurate first."""
        best: dict[str, Trial] = {}
        for t in self._ranked(trials):
            best.setdefault(t.graph, t)
        return list(best.values())

    def ratio(self, a: Path, b: Path) -> TimeRatio:
        """Interleaved timing of two files (``time(a) / time(b)`` per round)."""
        runs, warmup = self.paired_timing
        return time_ratio(a, b, runs=runs, warmup=warmup)

    def _versus_fp32(self, path: Path) -> SpeedVsFp32:
        assert self.fp32_path is not None
        return SpeedVsFp32(self.ratio(path, self.fp32_path))

    def choose(self) -> tuple[Trial, bool, list[str], SpeedVsFp32 | None]:
        """(pick, within budget on the search images, how it was chosen, its timing against fp32 (None: no fp32
        file to time against)).

        Within budget: the most accurate trial, unless a trial of a *different* fused graph is faster by a margin
        interleaved timing confirms. Over budget: the most accurate eligible trial, unless it is slower than fp32;
        then the most accurate trial of another fused graph that is faster than fp32, else the frontier's fastest
        point (an int8 file slower than fp32 is never the answer)."""
        eligible = [t for t in self.trials if self._eligible(t)] or self.trials
        fitting = [t for t in eligible if self._fits(t)]
        notes: list[str] = []
        graphs = self._per_graph(fitting or eligible)
        pick = graphs[0]
        if len(graphs) < len(fitting or eligible):
            notes.append(
                f"{len(fitting or eligible)} candidate trials run {len(graphs)} distinct fused graph(s): trials of "
                "one graph differ only in weight values and are ranked by accuracy, never by their timings"
            )
        if fitting:
            rival = min(graphs, key=lambda t: t.latency_p50_ms)
            if rival is not pick:
                r = self.ratio(rival.path, pick.path)
                faster = r.a_faster()
                notes.append(
                    f"interleaved timing: {rival.label} runs at {r.median:.2f}x the time of {pick.label} "
                    f"(rounds {r.low:.2f}-{r.high:.2f}): "
                    + ("faster beyond the noise margin, chosen" if faster else "not faster beyond noise, not chosen")
                )
                pick = rival if faster else pick
        speed = None
        if self.fp32_path is not None:
            speed = self._versus_fp32(pick.path)
            if speed.slower and not fitting:
                pick, speed, note = offer_instead(pick, speed, graphs[1:], eligible, self._versus_fp32)
                notes.append(note)
        return pick, bool(fitting), notes, speed

    def _refine(self, best: Trial, what: str, suffix: str, **change: Any) -> tuple[Trial, str]:
        """``best`` with one ingredient changed, kept only if it measures better on the search images."""
        if all(getattr(best.recipe, key) == value for key, value in change.items()):
            # The learned search starts bias-corrected: the same recipe again would cost a trial and say nothing.
            note = f"{what}: already in the recipe ({best.label})"
            self.log(f"  {note}")
            return best, note
        trial = self._try(dataclasses.replace(best.recipe, name=f"{best.recipe.name}-{suffix}", **change))
        better = self._ranked([best, trial])[0] is trial
        note = (
            f"{what} {'kept' if better else 'not kept'}: drop {best.drop_points:+.2f} -> {trial.drop_points:+.2f} "
            f"pts, logit error {best.accuracy.relative_error:.4g} -> {trial.accuracy.relative_error:.4g} "
            f"({best.label})"
        )
        self.log(f"  {note}")
        return (trial if better else best), note

    def run(self, candidates: list[QuantRecipe]) -> SearchResult:
        for recipe in candidates:
            self._try(recipe)
        best, bc_note = self._refine(self._ranked(self.trials)[0], "bias correction", "bc", bias_correction=True)
        # Cross-layer equalisation, then the per-tensor choice of calibration method: each kept only if better.
        best, eq_note = self._refine(best, "cross-layer equalisation", "eq", equalize=True)
        best, pt_note = self._refine(best, "per-tensor calibration method", "pt", calibrate_method="PerTensor")
        refinements = [eq_note, pt_note]
        # Over budget, the nodes to keep in float are searched from the recipe without reconstruction: each of
        # that search's trials would learn every layer again, and its sensitivity must be measured on the
        # graph it edits.
        base = best
        if self.reconstruct == "on" or (self.reconstruct == "auto" and not self._fits(best)):
            self.log("  layer-wise reconstruction of the best recipe (learned rounding and biases)")
            _, rc_note = self._refine(best, "layer-wise reconstruction", "rc", reconstruct=True)
            refinements.append(rc_note + self._reconstruct_summary(dataclasses.replace(best.recipe, reconstruct=True)))
        ranking: list[tuple[str, float]] = []
        if not any(self._fits(t) for t in [t for t in self.trials if self._eligible(t)] or self.trials):
            ranking = self.sensitivity(base)
            self._fewest_float_nodes(base.recipe, [name for name, _ in ranking])
        chosen, met, notes, speed = self.choose()
        step = None
        if met and self.tune_speed and speed is not None and speed.ratio.resolvable:
            step = faster_int8(self, chosen)
            if step.pick is not chosen:
                chosen, speed = step.pick, self._versus_fp32(step.pick.path)
        if speed is not None:
            notes.append(f"against fp32 the pick runs at {speed.line()}: {speed.advice()}")
        return SearchResult(chosen, met, self.trials, ranking, bc_note, refinements, notes, speed, step)

    def try_recipe(self, recipe: QuantRecipe) -> Trial:
        """Quantize ``recipe`` and measure it on the search images (once per distinct recipe)."""
        return self._try(recipe)

    def acceptable(self, trial: Trial) -> bool:
        """Within budget on the search images, and mostly int8 as onnxruntime runs it."""
        return self._fits(trial) and self._eligible(trial)

    def _reconstruct_summary(self, recipe: QuantRecipe) -> str:
        """What the reconstruction of ``recipe`` did, for its refinement note ("" when it did not run)."""
        r = self.quantizer.reconstruct_notes.get(recipe.describe())
        return "" if r is None else f"; {r['summary']}"

    def _cache_file(self, recipe: QuantRecipe, sub_inputs: np.ndarray) -> Path | None:
        if self.cache_dir is None:
            return None
        h = hashlib.sha256(Path(self.quantizer.float_path(recipe)).read_bytes())
        h.update(repr(recipe.key()).encode())
        h.update(np.ascontiguousarray(sub_inputs).tobytes())
        h.update(hashlib.sha256(repr([i.shape for i in self.quantizer.calibration.images]).encode()).digest())
        return self.cache_dir / f"sensitivity-{h.hexdigest()[:24]}.json"

    def sensitivity(self, base: Trial) -> list[tuple[str, float]]:
        """Nodes ranked by how much computing each one in float reduces the logit error of ``base`` on a subset
        of the search images; most responsible first."""
        recipe = base.recipe
        nodes = quantized_compute_nodes(base.path)
        self.units = float_units(self.quantizer.pre_path, nodes)
        idx = evenly_spaced(len(self.inputs), self.sensitivity_images)
        sub_inputs, sub_ref = self.inputs[idx], self.fp32_logits[idx]
        cache = self._cache_file(recipe, sub_inputs)
        if cache is not None and cache.is_file():
            scored = [(str(n), float(e)) for n, e in json.loads(cache.read_text())]
            self.log(f"  over budget: sensitivity of {len(scored)} nodes read from the cache {cache}")
            return scored
        self.log(f"  over budget: measuring the sensitivity of {len(nodes)} quantized nodes on {len(idx)} images")
        scored = rank_nodes(base.path, self.quantizer.float_path(recipe), nodes, sub_inputs, sub_ref)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(scored))
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
                kept = dataclasses.replace(
                    recipe, name=f"{recipe.name}-float{k}", nodes_to_exclude=self._exclusion(ranked, k)
                )
                # The ingredients (bias correction, equalisation, ranges) were chosen on the all-int8 model and
                # are kept: trying each k without them too doubled the search's time for no measured gain.
                results[k] = self._try(kept)
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
