"""The repair step: changes to the most accurate recipe, each kept only when it measures better on the search
images, by one keep rule (``search.trials.better``) for all of them.

In order, each tried on the best so far:
1. quantization-aware fine-tuning (``repairs.qat``), when an edgecls run's checkpoint and labelled training split
   are at hand (``--qat EPOCHS``) and the best recipe misses the budget: the fine-tuned weights quantized with the
   recipe QAT simulated. First, because it changes the weights every later repair works on;
2. bias correction (``repairs.bias_correction``): the mean error of the rounded weights folded into the biases;
3. cross-layer equalisation (``repairs.equalize``) of conv pairs before quantizing;
4. a per-tensor choice of calibration method (``qdq.range_choice``: MinMax or a percentile clip per tensor);
5. layer-wise reconstruction (``repairs.reconstruct``) of the best: ``auto`` when it still misses the budget,
   ``on``, ``off``.
None of them learns from the search images (bias correction, equalisation, the ranges and reconstruction learn
from calibration images, QAT from the run's training split), so the search images judge them all alike.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from edgecls.export.quant.qdq.static_quantizer import StaticQuantizer
from edgecls.export.quant.recipes import QuantRecipe, TargetPlan
from edgecls.export.quant.repairs.qat import QatPlan, fine_tune, simulated_recipe
from edgecls.export.quant.search.trials import Trial, TrialBench, better, fits

QAT_FP32_NAME = "model.qat-fp32.onnx"


@dataclass(frozen=True)
class Repaired:
    best: Trial  # the most accurate trial once every repair was tried
    base: Trial  # where the float-node search starts: ``best`` without reconstruction (its trials would relearn)
    notes: tuple[str, ...]  # per repair: kept or not, and what it measured
    qat: dict[str, Any] | None = None  # what fine-tuning did (None: it did not run)


def _keep_better(bench: TrialBench, best: Trial, what: str, candidate: QuantRecipe) -> tuple[Trial, str]:
    """The candidate measured and kept only if it ranks above ``best`` on the search images."""
    if candidate.key() == best.recipe.key():  # the same recipe again would cost a trial and say nothing
        note = f"{what}: already in the recipe ({best.label})"
        bench.log(f"  {note}")
        return best, note
    trial = bench.try_recipe(candidate)
    kept = better(trial, best)
    note = (
        f"{what} {'kept' if kept else 'not kept'}: drop {best.drop_points:+.2f} -> {trial.drop_points:+.2f} "
        f"pts, logit error {best.accuracy.relative_error:.4g} -> {trial.accuracy.relative_error:.4g} "
        f"({best.label})"
    )
    bench.log(f"  {note}")
    return (trial if kept else best), note


def _variant(recipe: QuantRecipe, suffix: str, **change: Any) -> QuantRecipe:
    if all(getattr(recipe, key) == value for key, value in change.items()):
        return recipe
    return dataclasses.replace(recipe, name=f"{recipe.name}-{suffix}", **change)


def _fine_tuned(bench: TrialBench, plan: QatPlan, target: TargetPlan) -> tuple[QuantRecipe, dict[str, Any]]:
    """Fine-tune the run (``repairs.qat``) and give the bench a quantizer of its weights; -> (the recipe QAT
    simulated, on those weights; what the training did)."""
    q = bench.quantizer
    assert q is not None
    recipe = simulated_recipe(target)
    out = bench.workdir / QAT_FP32_NAME
    bench.log(f"  quantization-aware fine-tuning for {plan.epochs} epoch(s), simulating {recipe.describe()}")
    training = fine_tune(plan, recipe, q.calibration, q.contract, out, bench.log)
    bench.fine_tuned = StaticQuantizer(out, q.calibration, q.contract, q.workdir / "qat", q.reconstruction, q.precise,
                                       q.log)  # fmt: skip
    return recipe, training


def repair(
    bench: TrialBench,
    best: Trial,
    max_drop: float,
    reconstruct: str,
    qat: tuple[QatPlan, TargetPlan] | None = None,
) -> Repaired:
    """Try each repair on ``best`` (see the module docstring); ``reconstruct``: auto | on | off; ``qat``: the run to
    fine-tune and the target it is made for (None: no QAT)."""
    notes, training = [], None
    if qat is not None and (qat[0].always or not fits(best, max_drop)):
        recipe, training = _fine_tuned(bench, *qat)
        best, note = _keep_better(bench, best, f"QAT ({qat[0].epochs} epochs)", recipe)
        notes.append(note)
    for what, suffix, change in (
        ("bias correction", "bc", {"bias_correction": True}),
        ("cross-layer equalisation", "eq", {"equalize": True}),
        ("per-tensor calibration method", "pt", {"calibrate_method": "PerTensor"}),
    ):
        best, note = _keep_better(bench, best, what, _variant(best.recipe, suffix, **change))
        notes.append(note)
    base = best
    if reconstruct == "on" or (reconstruct == "auto" and not fits(best, max_drop)):
        bench.log("  layer-wise reconstruction of the best recipe (learned rounding and biases)")
        recipe = _variant(best.recipe, "rc", reconstruct=True)
        best, note = _keep_better(bench, best, "layer-wise reconstruction", recipe)
        done = bench.quantizer_for(recipe).reconstruct_notes.get(recipe.describe())
        notes.append(note + ("" if done is None else f"; {done['summary']}"))
    return Repaired(best, base, tuple(notes), training)

