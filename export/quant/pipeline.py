"""int8 for any edgecls ONNX classifier, as one pipeline of steps at the same level:

    recipes -> repairs -> float-node search -> choice and speed step -> verdict -> publish once

``quantize_model`` is what ``edgecls export --quantize`` and ``edgecls quantize`` (through ``quantize_file``) both
call, with the images already loaded. The validation images are split (seeded, disjoint;
``grading.holdout``) into a search part, on which every trial is measured and every step chooses
(``search.trials.TrialBench``), and a held-out part, on which only the pick is graded: the verdict and the exit
status come from the held-out part, the report gives both.

1. recipes: the target's recipes (``recipes.candidate_recipes``), each quantized (``qdq``) and measured;
2. repairs (``repair_step``): QAT (an edgecls run with ``--qat``), bias correction, equalisation, per-tensor
   ranges, layer-wise reconstruction, each kept only when it measures better (one keep rule);
3. float-node search (``search.float_nodes``): over budget, the fewest nodes kept in float that fit;
4. choice (``search.choice``) and, within budget, the speed step (``search.speed_step``: float where int8 is
   slower per node), with the pick's one timing against fp32;
5. verdict (``grading.verdict`` via ``grading.holdout``): the 95% interval of the held-out drop; "unverified" when
   the held-out images cannot resolve the budget. A run's test split is graded too, never used to choose;
6. publish once: every candidate was written to a temporary folder; within budget (verified or not), or over it
   with ``allow_over_budget``, the pick is written to the int8 path with the fp32 model's contract,
   ``provenance.variant = "int8"`` and a ``quantization`` record; the report (``report``, ``report_files``) is
   written beside it. Over budget, :class:`OverBudgetError` (exit status 3) carries the report; unverified exits 0
   unless ``require_verified`` (:class:`UnverifiedError`, exit status 4, the file is written).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnx

from edgecls.export.metadata import PRODUCER_NAME, contract_of, embed_contract
from edgecls.export.onnx_export import lower_ir_version, write_model
from edgecls.export.quant.grading.conv_counts import fusion_record
from edgecls.export.quant.grading.fused_graph import float_compute_nodes
from edgecls.export.quant.grading.holdout import Grade, grade, grade_test, graded_parts, split_validation
from edgecls.export.quant.grading.image_sets import MIN_CALIBRATION_IMAGES, ImageList
from edgecls.export.quant.grading.verdict import UNVERIFIED
from edgecls.export.quant.options import QuantizeOptions
from edgecls.export.quant.qdq.static_quantizer import StaticQuantizer
from edgecls.export.quant.recipes import TargetPlan, candidate_recipes, plan_target
from edgecls.export.quant.reconstruct_cap import time_cap_warning
from edgecls.export.quant.repair_step import repair
from edgecls.export.quant.repairs.qat import QatPlan
from edgecls.export.quant.repairs.reconstruct import ReconstructSettings
from edgecls.export.quant.report import ImageCounts, QuantReport, ValidationSplit
from edgecls.export.quant.report_files import write_report
from edgecls.export.quant.search.choice import choose
from edgecls.export.quant.search.float_nodes import keep_nodes_float
from edgecls.export.quant.search.frontier import plot_frontier
from edgecls.export.quant.search.speed_step import faster_int8
from edgecls.export.quant.search.trials import Trial, TrialBench, ranked
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.cpu_isa import detect_isa
from edgecls.runtime.errors import ContractError, EdgeclsError

FRONTIER_PLOT = "quantization_frontier.png"

Log = Callable[[str], None]


class OverBudgetError(EdgeclsError):
    """The best int8 model misses the accuracy budget on held-out images (exit status 3)."""

    exit_status = 3

    def __init__(self, report: QuantReport) -> None:
        super().__init__(report.headline())
        self.report = report


class UnverifiedError(OverBudgetError):
    """``require_verified`` and the held-out images cannot resolve the budget (exit status 4; the file is written)."""

    exit_status = 4


def _contract_for(fp32_path: Path, contract: ModelContract | None) -> ModelContract:
    if contract is not None:
        return contract
    found = contract_of(onnx.load(str(fp32_path), load_external_data=False))
    if found is None:
        raise ContractError(
            f"{fp32_path}: model has no edgecls contract; pass --labels, --input-size and the preprocessing flags"
        )
    return found


def _data_warnings(calibration: ImageList, validation: ImageList, holdout: int, max_drop: float) -> list[str]:
    out = []
    if len(calibration) < MIN_CALIBRATION_IMAGES:
        out.append(
            f"only {len(calibration)} calibration images (fewer than {MIN_CALIBRATION_IMAGES}): "
            "activation ranges may be noisy"
        )
    for role, images in (("calibration", calibration), ("validation", validation)):
        if images.skipped:
            out.append(f"{len(images.skipped)} unreadable {role} images skipped, e.g. {images.skipped[0]}")
    if 100.0 / max(holdout, 1) > max_drop:
        out.append(
            f"one held-out image is worth {100.0 / max(holdout, 1):.2f} points, more than the budget "
            f"({max_drop:g}): a single changed answer decides the verdict; give more validation images"
        )
    return out


def _quantization_record(
    pick: Trial, plan: TargetPlan, calibration: ImageList, split: ValidationSplit, held_out: Grade
) -> dict[str, object]:
    """What the int8 file's contract says about how it was made and what it measured."""
    recipe, v = pick.recipe, held_out.verdict
    return {
        "method": recipe.describe(len(pick.float_nodes)),
        "format": "QDQ",
        "target": plan.target,
        "activation_type": recipe.activation_type,
        "weight_type": recipe.weight_type,
        "per_channel": recipe.per_channel,
        "reduce_range": recipe.reduce_range,
        "calibrate_method": recipe.calibrate_method,
        "bias_correction": recipe.bias_correction,
        "equalize": recipe.equalize,
        "calibration": calibration.source,
        "images": len(calibration),
        "isa": plan.host.isa,
        "metric": v.metric,
        "accuracy_fp32": held_out.fp32.top1 if v.metric == "top1" else 1.0,
        "accuracy_int8": held_out.int8.score,
        "accuracy_change_points": -round(v.drop_points, 3),
        "agreement": held_out.int8.agreement,  # on every held-out image
        "agreement_on": split.agreement_on,
        "decisive_images": split.decisive_holdout,
        "validation_images": split.holdout,
        "search_drop_points": round(pick.drop_points, 3),
        "max_drop": v.max_drop,
        "budget_met": v.budget_met,
        "status": v.status,  # "within budget" | "unverified" | "over budget"
        "interval_points": [round(x, 3) for x in v.interval_points],
        "verdict": v.line(),  # says "unverified" and why, when it is
        "int8_conv_fraction": pick.fusion.get("int8_fraction"),
        "nodes_kept_float": pick.float_nodes,
    }


def _publish(best_path: Path, out_path: Path, contract: ModelContract) -> list[str]:
    """Write the chosen model with its contract to ``out_path``; returns its float nodes read back from it."""
    model = onnx.load(str(best_path))
    model.producer_name = PRODUCER_NAME
    embed_contract(model, contract)
    lower_ir_version(model)
    onnx.checker.check_model(model)
    write_model(model, out_path)
    return float_compute_nodes(out_path)


def quantize_model(
    fp32_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    calibration: ImageList,
    validation: ImageList,
    contract: ModelContract | None = None,
    options: QuantizeOptions | None = None,
    log: Log = print,
    test: ImageList | None = None,
    qat: QatPlan | None = None,
) -> QuantReport:
    """Write the int8 QDQ model of ``fp32_path`` to ``out_path`` and its report beside it.

    ``test``: a run's test split, graded too and reported (never used to choose). ``qat``: an edgecls run to
    fine-tune with int8 rounding in the loop (the QAT repair). Raises :class:`OverBudgetError` (after writing the
    report) when the held-out drop exceeds the budget and ``allow_over_budget`` is off; nothing is then written at
    ``out_path``."""
    t0 = time.perf_counter()
    opts = options or QuantizeOptions()
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    contract = _contract_for(fp32_path, contract)
    plan = plan_target(opts.target, detect_isa())
    search_images, holdout_images, warnings = split_validation(validation, log)
    warnings += _data_warnings(calibration, validation, len(holdout_images), opts.max_drop)
    for w in warnings:
        log(f"warning: {w}")
    log(f"int8 for {plan.target} ({plan.note}); calibrating on {len(calibration)} images, budget {opts.max_drop:g} pts")
    parts = (search_images, holdout_images)
    search, holdout = graded_parts(fp32_path, parts, contract, opts.agreement_on, log)
    report_dir = Path(opts.report_dir or out_path.parent)
    with tempfile.TemporaryDirectory(prefix="edgecls-quant-") as tmp:
        reconstruction = ReconstructSettings(seconds=opts.reconstruct_seconds)
        quantizer = StaticQuantizer(fp32_path, calibration, contract, tmp, reconstruction, plan.precise_kernels, log)
        bench = TrialBench(
            quantizer, search.inputs, search.labels, search.fp32_logits, Path(tmp), log, plan.precise_kernels,
            (opts.trial_latency_runs, 5), (opts.latency_runs, opts.latency_warmup), fp32_path, search.mask,
        )  # fmt: skip
        for recipe in opts.recipes or candidate_recipes(plan):  # 1. recipes
            bench.try_recipe(recipe)
        repaired = repair(  # 2. repairs
            bench, ranked(bench.trials)[0], opts.max_drop, opts.reconstruct, None if qat is None else (qat, plan)
        )
        cache = Path(opts.cache_dir) if opts.cache_dir else None
        sensitivity = keep_nodes_float(bench, repaired.base, opts.max_drop, opts.sensitivity_images, cache)  # 3.
        choice = choose(bench, opts.max_drop)  # 4. choice, speed step
        pick, speed, step = choice.pick, choice.speed, None
        assert speed is not None  # the bench times against fp32_path
        if choice.budget_met and opts.tune_speed and plan.target == plan.host.target and speed.ratio.resolvable:
            step = faster_int8(bench, pick, opts.max_drop)  # speed here is the target's
            if step.pick is not pick:
                pick, speed = step.pick, bench.versus_fp32(step.pick.path)
        notes = [*choice.notes, f"against fp32 the pick runs at {speed.line()}: {speed.advice()}"]
        for note in notes:
            log(f"  choice: {note}")
        for line in step.summary() if step is not None else []:
            log(line)
        held_out = grade(pick.path, holdout, opts.max_drop, plan.precise_kernels)  # 5. verdict
        cap_notes = {**quantizer.reconstruct_notes, **(bench.fine_tuned.reconstruct_notes if bench.fine_tuned else {})}
        if cap := time_cap_warning(bench.trials, cap_notes, holdout, plan.precise_kernels):
            warnings.append(cap)
            log(f"warning: {cap}")
        tested = None if test is None else grade_test(pick.path, fp32_path, test, contract, opts.max_drop,
                                                       plan.precise_kernels)  # fmt: skip
        split = ValidationSplit.of(validation, search, holdout)
        written = held_out.verdict.budget_met or opts.allow_over_budget  # 6. publish once
        nodes = pick.float_nodes
        if written:  # read back from the published file: the report describes what was written
            provenance = {"variant": "int8", "quantization": _quantization_record(pick, plan, calibration, split,
                                                                                  held_out)}  # fmt: skip
            if pick.recipe.fine_tuned and repaired.qat is not None:
                provenance["qat"] = {k: v for k, v in repaired.qat.items() if k != "history"}
            nodes = _publish(pick.path, out_path, contract.with_provenance(**provenance))
        plot = plot_frontier(
            [t.to_dict() for t in bench.trials], speed.latency()["fp32"]["p50_ms"], opts.max_drop, pick.label,
            Path(tmp) / FRONTIER_PLOT, held_out.verdict.metric,
        )  # fmt: skip
        if plot is not None:
            report_dir.mkdir(parents=True, exist_ok=True)
            plot = shutil.copyfile(plot, report_dir / FRONTIER_PLOT)
        equalized = [quantizer.sources.equalize_note] if pick.recipe.equalize else []
        report = QuantReport(
            fp32_model=str(fp32_path),
            int8_model=str(out_path) if written else "",
            plan=plan,
            pick=pick,
            nodes_kept_float=tuple(nodes),
            calibration=ImageCounts.of(calibration),
            validation=split,
            grade=held_out,
            speed=speed,
            size_bytes={"fp32": fp32_path.stat().st_size, "int8": pick.path.stat().st_size},
            preprocess=bench.quantizer_for(pick.recipe).preprocess_note,
            trials=tuple(bench.trials),
            fusion=fusion_record(pick.path),
            repairs=(*repaired.notes, *filter(None, equalized)),
            choice=tuple(notes),
            sensitivity=tuple(sensitivity),
            speed_step=step,
            warnings=tuple(warnings),
            frontier_plot=None if plot is None else str(plot),
            test=tested,
            qat=repaired.qat,
            seconds=round(time.perf_counter() - t0, 1),
        )
    write_report(report, report_dir)
    log(report.headline())
    if line := report.test_line():
        log(f"int8 {line}")
    if not written:
        raise OverBudgetError(report)
    if report.status == UNVERIFIED and opts.require_verified:
        raise UnverifiedError(report)
    return report
