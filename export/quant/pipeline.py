"""int8 for any edgecls ONNX classifier: calibrate, quantize within an accuracy budget, measure, report.

``quantize_model`` is what ``edgecls export --quantize`` and ``edgecls quantize`` (through ``quantize_file``)
both call, with the images already loaded. The validation images are split (seeded, disjoint) into a search
part, on which the budget search chooses a model, and a held-out part, on which the chosen model is graded:
the verdict and the exit status come from the held-out part, the report gives both. The split is stratified
over the labels when there are labels, and the search part is capped (``MAX_SEARCH_IMAGES``): the images beyond
it all grade. The verdict (``verdict.judge``) carries the 95% interval of the drop and is "unverified" when the
held-out images cannot resolve the budget. Within budget (verified or not), the int8 model is written with the
fp32 model's contract, ``provenance.variant = "int8"`` and a ``quantization`` record (target, method, images,
measured change, status, nodes read back from the written graph). Over budget, nothing is written at the int8
path unless ``allow_over_budget``, and :class:`OverBudgetError` (exit status 3) carries the report. Unverified
exits 0 unless ``require_verified`` (:class:`UnverifiedError`, exit status 4, the file is written).
A ``test`` image set (a run's test split) is graded too: reported, never used to choose.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from edgecls.export.metadata import PRODUCER_NAME, contract_of, embed_contract
from edgecls.export.onnx_export import lower_ir_version, write_model
from edgecls.export.parity import onnx_logits
from edgecls.export.quant.budget_search import BudgetSearch, SearchResult
from edgecls.export.quant.conv_counts import fusion_record
from edgecls.export.quant.decisive import DecisiveImages, decisive_parts
from edgecls.export.quant.evaluate import Accuracy, graded_score, measure_accuracy
from edgecls.export.quant.frontier import frontier, plot_frontier
from edgecls.export.quant.fused_graph import float_compute_nodes
from edgecls.export.quant.image_sets import MIN_CALIBRATION_IMAGES, ImageList, split_disjoint
from edgecls.export.quant.options import QuantizeOptions
from edgecls.export.quant.recipes import QuantRecipe, TargetPlan, candidate_recipes, plan_target
from edgecls.export.quant.reconstruct import ReconstructSettings
from edgecls.export.quant.reconstruct_cap import time_cap_warning
from edgecls.export.quant.report import QuantReport, write_report
from edgecls.export.quant.speed_vs_fp32 import speed_vs_fp32
from edgecls.export.quant.static_quantizer import StaticQuantizer
from edgecls.export.quant.verdict import OVER, UNVERIFIED, judge
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.cpu_isa import detect_isa
from edgecls.runtime.errors import ContractError, EdgeclsError
from edgecls.runtime.inference.scores import top1_accuracy

HOLDOUT_FRACTION = 0.5  # share of the validation images the search never sees (at least)
#: The search part never takes more: the search overfits the images it chooses on (96-100% there became 88-90%
#: held out on EfficientNet-Lite0), so images beyond this go to the grade, where they narrow the interval.
MAX_SEARCH_IMAGES = 200
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


def _split_validation(validation: ImageList, log: Log) -> tuple[ImageList, ImageList, list[str]]:
    """(search part, held-out part): disjoint when there are at least 4 images."""
    if len(validation) < 4:
        return (
            validation,
            validation,
            [f"only {len(validation)} validation images: the search and the final grade use the same images"],
        )
    share = max(HOLDOUT_FRACTION, 1.0 - MAX_SEARCH_IMAGES / len(validation))
    search, holdout = split_disjoint(validation, share, ("search", "held-out"))
    log(f"int8: {len(search)} validation images choose the model, {len(holdout)} held-out images grade it")
    return search, holdout, []


def _quantization_record(
    recipe: QuantRecipe,
    plan: TargetPlan,
    calibration: ImageList,
    report: QuantReport,
) -> dict[str, object]:
    return {
        "method": recipe.describe(len(report.nodes_kept_float)),
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
        "metric": report.metric,
        "accuracy_fp32": report.fp32.get("top1") if report.metric == "top1" else 1.0,
        "accuracy_int8": graded_score(report.int8),
        "accuracy_change_points": -report.drop_points,
        "agreement": report.int8.get("agreement"),  # on every held-out image
        "agreement_on": report.validation.get("agreement_on"),
        "decisive_images": report.validation.get("decisive_holdout_images"),
        "validation_images": report.validation.get("holdout_images"),
        "search_drop_points": report.search.get("drop_points"),
        "max_drop": report.max_drop,
        "budget_met": report.budget_met,
        "status": report.status,  # "within budget" | "unverified" | "over budget"
        "interval_points": report.interval_points,
        "verdict": report.verdict,  # says "unverified" and why, when it is
        "int8_conv_fraction": report.fusion.get("int8_fraction"),
        "nodes_kept_float": report.nodes_kept_float,
    }


def _publish(best_path: Path, out_path: Path, contract: ModelContract, record: dict[str, object]) -> list[str]:
    """Write the chosen model with its contract to ``out_path``; returns its float nodes read back from it."""
    model = onnx.load(str(best_path))
    model.producer_name = PRODUCER_NAME
    embed_contract(model, contract.with_provenance(variant="int8", quantization=record))
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
    reference: str | os.PathLike[str] | None = None,
    test: ImageList | None = None,
) -> QuantReport:
    """Write the int8 QDQ model of ``fp32_path`` to ``out_path`` and its report beside it.

    ``reference``: the fp32 model the int8 one is graded and timed against (default ``fp32_path``); QAT
    quantizes its fine-tuned copy of a model but is judged against the original. ``test``: a run's test split,
    graded too and reported (never used to choose).

    Raises :class:`OverBudgetError` (after writing the report) when the held-out drop exceeds the budget and
    ``allow_over_budget`` is off; nothing is then written at ``out_path``."""
    t0 = time.perf_counter()
    opts = options or QuantizeOptions()
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    ref_path = Path(reference) if reference is not None else fp32_path
    contract = _contract_for(fp32_path, contract)
    plan = plan_target(opts.target, detect_isa())
    candidates = opts.recipes or candidate_recipes(plan)
    search_part, holdout, split_notes = _split_validation(validation, log)
    warnings_ = split_notes + _data_warnings(calibration, validation, len(holdout), opts.max_drop)
    for w in warnings_:
        log(f"warning: {w}")
    log(f"int8 for {plan.target} ({plan.note}); calibrating on {len(calibration)} images, budget {opts.max_drop:g} pts")
    labels = validation.labels
    metric = "top1" if labels is not None else "agreement"
    search_inputs = search_part.inputs(contract)  # float32[N, 3, h, w], computed once for every trial
    holdout_inputs = holdout.inputs(contract)
    search_ref = onnx_logits(ref_path, search_inputs)
    holdout_ref = onnx_logits(ref_path, holdout_inputs)
    search_decisive, holdout_decisive = (
        (None, None)
        if labels is not None
        else decisive_parts(
            ref_path, (search_part.images, holdout.images), (search_ref, holdout_ref), contract, opts.agreement_on, log
        )
    )
    with tempfile.TemporaryDirectory(prefix="edgecls-quant-") as tmp:
        quantizer = StaticQuantizer(
            fp32_path,
            calibration,
            contract,
            tmp,
            ReconstructSettings(seconds=opts.reconstruct_seconds),
            precise=plan.precise_kernels,
            log=log,
        )
        search = BudgetSearch(
            quantizer,
            search_inputs,
            search_part.labels,
            search_ref,
            opts.max_drop,
            Path(tmp),
            log=log,
            sensitivity_images=opts.sensitivity_images,
            precise=plan.precise_kernels,
            latency_runs=opts.trial_latency_runs,
            paired_timing=(opts.latency_runs, opts.latency_warmup),
            cache_dir=Path(opts.cache_dir) if opts.cache_dir else None,
            fp32_path=ref_path,
            decisive=None if search_decisive is None else search_decisive.mask,
            reconstruct=opts.reconstruct,
            tune_speed=opts.tune_speed and plan.target == plan.host.target,  # speed here is the target's
        )
        result = search.run(candidates)
        report = _grade(
            result,
            ref_path,
            out_path,
            holdout,
            (holdout_inputs, holdout_ref, holdout_decisive),
            plan,
            opts,
            len(search_part),
        )
        mask = None if holdout_decisive is None else holdout_decisive.mask
        holdout_graded = (holdout_inputs, holdout_ref, holdout.labels, mask)
        if cap := time_cap_warning(result.trials, quantizer.reconstruct_notes, holdout_graded, plan.precise_kernels):
            warnings_.append(cap)
            log(f"warning: {cap}")
        report.calibration = {
            "source": calibration.source,
            "images": len(calibration),
            "skipped": len(calibration.skipped),
        }
        report.validation = {
            "source": validation.source,
            "images": len(validation),
            "skipped": len(validation.skipped),
            "search_images": len(search_part),
            "holdout_images": len(holdout),
            "split": f"seeded disjoint split: {search_part.source}; {holdout.source}",
            "agreement_on": "all" if holdout_decisive is None else "decisive",
            "decisive_search_images": None if search_decisive is None else search_decisive.count,
            "decisive_holdout_images": None if holdout_decisive is None else holdout_decisive.count,
        }
        report.preprocess = quantizer.preprocess_note
        report.warnings = warnings_
        report.metric = metric
        report.bias_correction = result.bias_correction
        report.refinements = result.refinements + [
            n for n in (quantizer.sources.equalize_note,) if n and result.best.recipe.equalize
        ]
        report.choice = result.choice
        for note in result.choice:
            log(f"  choice: {note}")
        if result.speed_step is not None:
            report.speed_step, report.node_speed = result.speed_step.notes, result.speed_step.kinds
            for line in result.speed_step.summary():
                log(line)
        if test is not None:
            report.test = _grade_test(result.best.path, ref_path, test, contract, plan, opts.max_drop)
        written = report.budget_met or opts.allow_over_budget
        report.nodes_kept_float = float_compute_nodes(result.best.path)  # what the graph runs in float
        record = _quantization_record(result.best.recipe, plan, calibration, report)
        report_dir = Path(opts.report_dir or out_path.parent)
        if written:  # read back from the published file: the report describes what was written
            report.nodes_kept_float = _publish(result.best.path, out_path, contract, record)
        # The one count of float nodes: the graph's (the method line and the list say the same).
        report.recipe = result.best.recipe.to_dict(len(report.nodes_kept_float))
        report.written = written
        report.int8_model = str(out_path) if written else ""
        report.size_bytes = {"fp32": ref_path.stat().st_size, "int8": result.best.path.stat().st_size}
        plot = plot_frontier(
            report.trials,
            report.latency["fp32"]["p50_ms"],
            opts.max_drop,
            result.best.label,
            tmp + "/" + FRONTIER_PLOT,
            metric,
        )
        if plot is not None:
            report_dir.mkdir(parents=True, exist_ok=True)
            report.frontier_plot = str(shutil.copyfile(plot, report_dir / FRONTIER_PLOT))
    report.seconds = round(time.perf_counter() - t0, 1)
    write_report(report, report_dir)
    log(report.headline())
    if line := report.test_line():
        log(f"int8 {line}")
    if not written:
        raise OverBudgetError(report)
    if report.status == UNVERIFIED and opts.require_verified:
        raise UnverifiedError(report)
    return report


def _grade_test(
    int8_path: Path, fp32_path: Path, test: ImageList, contract: ModelContract, plan: TargetPlan, max_drop: float
) -> dict[str, object]:
    """The chosen int8 model against fp32 on a run's test split (reported, never used to choose)."""
    inputs = test.inputs(contract)
    ref = onnx_logits(fp32_path, inputs)
    acc, logits = measure_accuracy(int8_path, inputs, test.labels, ref, plan.precise_kernels)
    v = judge(logits, ref, test.labels, max_drop)
    return {
        "source": test.source,
        "images": len(test),
        "metric": v.metric,
        "fp32_top1": None if test.labels is None else top1_accuracy(ref, test.labels),
        "int8_top1": acc.top1,
        "agreement": acc.agreement,
        "drop_points": round(v.drop_points, 3),
        "interval_points": [round(x, 3) for x in v.interval_points],
    }


def _grade(
    result: SearchResult,
    fp32_path: Path,
    out_path: Path,
    holdout: ImageList,
    graded: tuple[np.ndarray, np.ndarray, DecisiveImages | None],
    plan: TargetPlan,
    opts: QuantizeOptions,
    search_images: int,
) -> QuantReport:
    """The chosen model on the held-out images (never used to choose it), its speed and its fused graph.
    ``graded``: the held-out float32[N, 3, h, w] inputs, fp32's float32[N, C] logits on them, and the images fp32
    decides (None: agreement on every image, or labelled)."""
    best = result.best
    labels = holdout.labels
    holdout_inputs, holdout_ref, decisive = graded
    mask = None if decisive is None else decisive.mask
    acc, logits = measure_accuracy(best.path, holdout_inputs, labels, holdout_ref, plan.precise_kernels, mask)
    fp32_top1 = None if labels is None else top1_accuracy(holdout_ref, labels)
    fp32_acc = Accuracy(fp32_top1, 1.0, 0.0, None if mask is None else 1.0)
    verdict = judge(logits, holdout_ref, labels, opts.max_drop, mask)
    drop = verdict.drop_points
    # The one timing of the pick against fp32 (issue 34): the search's, or measured now the same way.
    speed = result.speed or speed_vs_fp32(best.path, fp32_path, opts.latency_runs, opts.latency_warmup)
    trials = [t.to_dict() for t in result.trials]
    return QuantReport(
        fp32_model=str(fp32_path),
        int8_model=str(out_path),
        isa=plan.host.to_dict(),
        recipe=best.recipe.to_dict(len(best.float_nodes)),
        metric="",
        calibration={},
        validation={},
        fp32=fp32_acc.to_dict(),
        int8=acc.to_dict(),
        drop_points=round(drop, 3),
        max_drop=opts.max_drop,
        budget_met=verdict.status != OVER,
        nodes_kept_float=[],
        size_bytes={},
        latency=speed.latency(),
        speedup_p50=speed.speedup,
        speed=speed.to_dict(),
        slower_than_fp32=speed.slower,
        preprocess="",
        trials=trials,
        sensitivity_top=[{"node": n, "relative_error": e} for n, e in result.sensitivity[:10]],
        target=plan.to_dict(),
        search={
            "images": search_images,
            "drop_points": round(best.drop_points, 3),
            "budget_met": result.budget_met,
            **best.accuracy.to_dict(),
        },
        fusion=fusion_record(best.path),
        frontier=frontier(trials),
        verdict=verdict.line(),
        status=verdict.status,
        interval_points=[round(x, 3) for x in verdict.interval_points],
    )
