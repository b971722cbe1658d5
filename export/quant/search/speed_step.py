"""The search's speed step: with a pick within budget, try what may run faster on this CPU and keep only what the
interleaved timing (``paired_timing``) finds faster than the current pick beyond noise, within the budget.

Candidates, each a change of the pick's recipe (issue 32):
- the convs whose int8 kernel is slower here than the fp32 model's kernel for the same conv (onnxruntime's
  profiler, ``node_profile.compare``), kept in float: DequantizeLinear -> float conv -> QuantizeLinear; and, when
  a whole kind of conv (depthwise, 1x1, ...) is slower in int8 in total, every conv of that kind;
- what the int8 kernels may favour: s8s8 instead of u8s8 activations, and symmetric activations (zero point 0).
A candidate is first quantized and timed against the pick (seconds); only one that is faster beyond noise is
graded on the search images (``TrialBench.try_recipe``) and kept when it fits the budget. Accuracy stays the budget's
decision: the step never trades it away.

What cannot win is not tried (so the step costs the demo's 32 px model nothing but its two profiles): a float
candidate whose convs' whole int8 excess (the profiled int8 time above fp32's, before any boundary cost) is under
the noise margin of the pick's time; s8s8 on x86, whose onnxruntime leaves s8s8 convs unfused (measured on
MobileNetV2 224, VNNI Xeon: 0.75x fp32's speed against u8s8's 1.54x, 15 of 52 convs unfused, 32 Transposes); and
symmetric activations on a graph with Relu/Clip activations, whose clip then no longer folds into the quantization
(measured: 0.58x fp32, 35 Clip nodes left between DequantizeLinear and QuantizeLinear). The step runs only where
speed measured here is the target's (the file is made for this CPU) and where the files are slow enough to time
(``paired_timing.MIN_RESOLVABLE_MS``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from edgecls.export.quant.grading.fused_graph import int8_kernel_sources, optimized_graph
from edgecls.export.quant.qdq.static_quantizer import QuantizationError
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.export.quant.search.node_profile import ConvTime, compare, kind_totals, profile_nodes
from edgecls.export.quant.search.paired_timing import MARGIN
from edgecls.export.quant.search.trials import Trial, TrialBench, acceptable, eligible
from edgecls.runtime.cpu_isa import detect_isa

#: A conv counts as slower in int8 only when its kernel takes this much longer than fp32's (profiler noise).
SLOWER_BY = 1.10


@dataclass
class SpeedStep:
    """What the speed step tried and found: ``kinds``: per node kind, int8 and fp32 microseconds per call
    (profiles of the final pick and of the fp32 model); ``notes``: each candidate and its timing."""

    pick: Trial
    notes: list[str] = field(default_factory=list)
    kinds: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> list[str]:
        """Per node kind, int8 vs fp32 time: the lines the command prints."""

        def ms(us: float) -> str:
            return f"{us / 1000:.2f} ms" if us else "-"

        return ["  int8 vs fp32 per node kind (onnxruntime's profiler, median per call on this CPU):"] + [
            f"    {k['kind']}: int8 {ms(k['int8_us'])} vs fp32 {ms(k['fp32_us'])}"
            + (f" ({k['convs']} convs, {k['int8_slower']} slower in int8)" if k.get("convs") else "")
            for k in self.kinds
        ]


def kind_table(int8_path: Path, fp32_path: Path) -> tuple[list[dict[str, Any]], list[ConvTime]]:
    """(per node kind: int8 vs fp32 time, the conv-by-conv comparison) of two files, profiled here."""
    int8, fp32 = profile_nodes(int8_path), profile_nodes(fp32_path)
    convs = compare(int8, fp32)
    totals = {"int8": kind_totals(int8), "fp32": kind_totals(fp32)}
    rows = []
    for kind in dict.fromkeys([*totals["int8"], *totals["fp32"]]):
        mine = [c for c in convs if c.kind == kind]
        rows.append(
            {
                "kind": kind,
                "int8_us": round(totals["int8"].get(kind, 0.0), 1),
                "fp32_us": round(totals["fp32"].get(kind, 0.0), 1),
                "convs": len(mine),
                "int8_slower": sum(c.int8_us > SLOWER_BY * c.fp32_us for c in mine),
            }
        )
    return rows, convs


def _float_candidates(
    recipe: QuantRecipe, rows: list[dict[str, Any]], convs: list[ConvTime]
) -> list[tuple[QuantRecipe, str, float]]:
    """(the pick's recipe with more convs kept float, which, the most it can save in microseconds): the convs slower
    in int8 here; and every conv of each kind slower in int8 in total."""
    slower = tuple(c.conv for c in convs if c.int8_us > SLOWER_BY * c.fp32_us)
    groups = [("slower-convs", slower, f"the {len(slower)} convs slower in int8 here kept float")]
    for row in rows:
        if row["convs"] and row["int8_us"] > SLOWER_BY * row["fp32_us"]:
            nodes = tuple(c.conv for c in convs if c.kind == row["kind"])
            groups.append((f"float-{row['kind'].replace(' ', '-')}", nodes, f"every {row['kind']} kept float"))
    out, seen = [], set()
    for name, nodes, why in groups:
        if nodes and frozenset(nodes) not in seen:
            seen.add(frozenset(nodes))
            excluded = tuple(dict.fromkeys([*recipe.nodes_to_exclude, *nodes]))
            excess = sum(max(0.0, c.int8_us - c.fp32_us) for c in convs if c.conv in nodes)
            out.append(
                (dataclasses.replace(recipe, name=f"{recipe.name}-{name}", nodes_to_exclude=excluded), why, excess)
            )
    return out


def _kernel_candidates(recipe: QuantRecipe, float_path: Path) -> list[tuple[QuantRecipe | None, str]]:
    """(recipe, what) for s8s8 and symmetric activations; None with the reason where they cannot win here.
    ``float_path``: the float graph the QDQ files are made from (their Relu/Clip nodes are folded away)."""
    out: list[tuple[QuantRecipe | None, str]] = []
    if recipe.activation_type == "QUInt8" and detect_isa().target.startswith("x86"):
        why = "x86's onnxruntime leaves s8s8 convs unfused (0.75x fp32 on MobileNetV2 224 against 1.54x for u8s8)"
        out.append((None, f"s8 activations: not tried, {why}"))
    elif recipe.activation_type == "QUInt8":
        out.append((dataclasses.replace(recipe, name=f"{recipe.name}-s8s8", activation_type="QInt8"), "s8 activations"))
    if recipe.activation_symmetric:
        return out
    graph = onnx.load(str(float_path), load_external_data=False).graph
    clips = sum(n.op_type in ("Relu", "Clip") for n in graph.node)
    if clips:
        why = f"{clips} Relu/Clip activations would no longer fold into the quantization (0.58x fp32 on MobileNetV2)"
        out.append((None, f"symmetric activations: not tried, {why}"))
    else:
        symmetric = dataclasses.replace(recipe, name=f"{recipe.name}-symmetric", activation_symmetric=True)
        out.append((symmetric, "symmetric activations (zero point 0)"))
    return out


def runs_float(bench: TrialBench, recipe: QuantRecipe, kept: tuple[str, ...], scratch: Path) -> tuple[
    QuantRecipe | None, str
]:
    """``recipe`` written to ``scratch`` with only those of its float convs that onnxruntime really runs in float:
    a conv kept float between DequantizeLinear and QuantizeLinear is re-quantized by onnxruntime's
    WeightBiasQuantization (per-tensor int8 weights), so asking for it buys no float kernel. Returns (the recipe, or
    None when none of its convs can run float; what was dropped)."""
    dropped: set[str] = set()
    for _ in range(3):  # dropping one may expose another; a few rounds settle it
        bench.quantize(recipe, scratch)
        again = set(recipe.nodes_to_exclude) & int8_kernel_sources(optimized_graph(scratch)) - set(kept)
        if not again:
            break
        dropped |= again
        rest = tuple(n for n in recipe.nodes_to_exclude if n not in again)
        if len(rest) == len(kept):
            return None, f"{len(dropped)} convs: onnxruntime would re-quantize them all (per-tensor int8 weights)"
        recipe = dataclasses.replace(recipe, nodes_to_exclude=rest)
    note = f" ({len(dropped)} more left int8: onnxruntime would re-quantize them)" if dropped else ""
    return recipe, note


def _time_and_keep(
    bench: TrialBench, step: SpeedStep, recipe: QuantRecipe, scratch: Path, why: str, max_drop: float
) -> None:
    """Time ``scratch`` (``recipe`` written) against the current pick; grade it only when faster; keep it when
    within budget and mostly int8. What it measured goes to ``step.notes``."""
    r = bench.ratio(scratch, step.pick.path)
    what = f"{why}: {r.median:.2f}x the time of the pick (rounds {r.low:.2f}-{r.high:.2f})"
    if not r.a_faster():
        step.notes.append(f"{what}: {'slower' if r.b_faster() else 'not faster beyond noise'}, not kept")
        return
    trial = bench.try_recipe(recipe)
    keep = acceptable(trial, max_drop)
    why_not = "over budget" if eligible(trial) else "mostly float"
    step.notes.append(
        f"{what}: faster; drop {trial.drop_points:+.2f} pts on the search images: "
        + ("kept" if keep else f"{why_not}, not kept")
    )
    if keep:
        step.pick = trial


def faster_int8(bench: TrialBench, pick: Trial, max_drop: float) -> SpeedStep:
    """Try the speed candidates of ``pick`` (within budget) in turn; each is timed against the current pick: the
    float candidates of ``pick``, then the kernel options of what they left."""
    assert bench.fp32_path is not None
    step = SpeedStep(pick)
    rows, convs = kind_table(pick.path, bench.fp32_path)
    total_us = sum(r["int8_us"] for r in rows)
    for recipe, why, excess_us in _float_candidates(pick.recipe, rows, convs):
        if excess_us < MARGIN * total_us:
            step.notes.append(
                f"{why}: not tried, at most {excess_us / 1000:.2f} of the pick's {total_us / 1000:.2f} ms to save, "
                f"under the {MARGIN:.0%} noise margin"
            )
            continue
        scratch = bench.workdir / f"speed-{recipe.name}.onnx"
        really, dropped = runs_float(bench, recipe, pick.recipe.nodes_to_exclude, scratch)
        if really is None:
            step.notes.append(f"{why}: not tried, {dropped}")
        else:
            _time_and_keep(bench, step, really, scratch, why + dropped, max_drop)
    for kernel, why in _kernel_candidates(step.pick.recipe, bench.quantizer_for(step.pick.recipe).pre_path):
        if kernel is None:
            step.notes.append(why)
            continue
        scratch = bench.workdir / f"speed-{kernel.name}.onnx"
        try:
            bench.quantize(kernel, scratch)
        except QuantizationError as e:  # onnxruntime cannot write every type pair
            step.notes.append(f"{why}: not tried ({e})")
            continue
        _time_and_keep(bench, step, kernel, scratch, why, max_drop)
    if step.pick is not pick:  # the profile of what ships
        rows, _ = kind_table(step.pick.path, bench.fp32_path)
    step.kinds = rows
    for note in step.notes:
        bench.log(f"  speed: {note}")
    return step
