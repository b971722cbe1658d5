"""int8 that learns from unlabelled images: when post-training int8 misses the budget and the torch model is at
hand, distil the float model into its own fake-int8 copy and quantize that the same way.

Steps (``quantize_with_distillation``; ``edgecls export --quantize`` and ``edgecls quantize --model``):
1. post-training quantization (``quantize_model``), exactly as without distillation; within budget (and not
   forced with ``--distill on``) that is the result;
2. otherwise its files move to ``OUT/ptq/`` and a fake-int8 copy of the model is trained to match the float model
   on augmented views of the *calibration* images (``edgecls.training.distill``: KL on temperature-softened
   logits, the rounding of the target's first recipe as ``--qat`` simulates it plus the search's bias
   correction, so that the student starts where post-training int8 is; no labels, ``--time-budget``);
3. the student's float weights (BatchNorm folded) are exported to ``OUT/distill/model.distill-fp32.onnx``
   (parity-checked against PyTorch) and quantized by the same ``quantize_model`` with that recipe, bias
   correction included (``distill_recipe``; the search still tries equalisation, per-tensor ranges and float
   nodes), graded against the *original* fp32 model on the
   same seeded search/held-out halves of the validation images;
4. the learned file is published (``model.int8.onnx``, plain QDQ: ``run``/``bench``/``info`` need nothing new)
   unless post-training was better on the held-out half, in which case post-training's files come back.
``distill_report.json``/``.md`` put both held-out results side by side with the loop's numbers (steps, wall and
CPU seconds, the load average: the machine may be shared).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.export.onnx_export import DEFAULT_OPSET, Exporter, export_to_onnx
from edgecls.export.parity import ParityError, check_parity
from edgecls.export.quant.evaluate import graded_score
from edgecls.export.quant.image_sets import ImageList
from edgecls.export.quant.options import QuantizeOptions
from edgecls.export.quant.pipeline import FRONTIER_PLOT, OverBudgetError, quantize_model
from edgecls.export.quant.ptq_aside import PTQ_DIR, compared_verdict, move_ptq_files, report_side
from edgecls.export.quant.qat_export import fake_quant_spec, simulated_recipe
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.export.quant.report import REPORT_JSON, REPORT_MD, QuantReport, write_report
from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import EdgeclsError

Log = Callable[[str], None]
DISTILL_MODES = ("auto", "on", "off")
DISTILL_DIR = "distill"
DISTILL_FP32_NAME = "model.distill-fp32.onnx"
DISTILL_REPORT_JSON = "distill_report.json"
DISTILL_REPORT_MD = "distill_report.md"
PARITY_IMAGES = 16
DEFAULT_TIME_BUDGET = 600.0  # seconds of learning
MIN_AUTO_IMAGES = 64  # --distill auto learns from at least this many calibration images


class DistillUnavailableError(EdgeclsError):
    """Distillation was forced but cannot run (no torch model, or a model torch.fx cannot rewrite)."""


@dataclass(frozen=True)
class DistillOptions:
    """``--distill auto|on|off`` and its settings (``edgecls.training.distill.DistillConfig`` for the rest)."""

    mode: str = "auto"  # auto: when post-training misses the budget; on: always; off: never
    time_budget: float = DEFAULT_TIME_BUDGET  # seconds of learning (the int8 search afterwards is extra)
    max_steps: int = 4000
    batch_size: int = 16
    lr: float = 2e-5
    temperature: float = 2.0
    feature_weight: float = 0.0
    progress: bool = True  # rich progress bar on stderr

    def __post_init__(self) -> None:
        if self.mode not in DISTILL_MODES:
            raise EdgeclsError(f"--distill must be one of {', '.join(DISTILL_MODES)}, got {self.mode!r}")
        if self.time_budget <= 0:
            raise EdgeclsError(f"--time-budget must be > 0 seconds, got {self.time_budget:g}")


@dataclass
class DistillOutcome:
    report: QuantReport  # the published int8 model's report
    record: dict[str, Any]  # post-training and learned side by side (distill_report.json)
    over_budget: OverBudgetError | None


def should_distill(ptq: QuantReport, options: DistillOptions, quantize: QuantizeOptions, images: int) -> str:
    """Why learning runs (``--distill on``; ``auto`` and post-training missed), or "" with why not in the log:
    ``auto`` does not spend the time budget when ``--allow-over-budget`` says a miss is acceptable, or on fewer
    than ``MIN_AUTO_IMAGES`` calibration images (a student would learn those few images, not the domain)."""
    if options.mode == "on":
        return "forced (--distill on)"
    if options.mode != "auto" or ptq.budget_met or quantize.allow_over_budget or images < MIN_AUTO_IMAGES:
        return ""
    return "post-training int8 missed the budget"


def distill_recipe(target: str) -> QuantRecipe:
    """The recipe the student simulates and its int8 search starts from: the target's first (as QAT's), with
    bias correction, which the student's simulation includes (``edgecls.training.bias_correction_sim``): without
    it the student starts below post-training, and correcting learned weights afterwards corrects them twice."""
    return dataclasses.replace(
        simulated_recipe(target),
        name="distill",
        bias_correction=True,
        reason="learned from the float model (distillation)",
    )


def _config(options: DistillOptions, recipe: Any) -> Any:
    from edgecls.training.distill import DistillConfig

    return DistillConfig(
        time_budget=options.time_budget,
        max_steps=options.max_steps,
        batch_size=options.batch_size,
        lr=options.lr,
        temperature=options.temperature,
        feature_weight=options.feature_weight,
        spec=fake_quant_spec(recipe),
        bias_correction=recipe.bias_correction,
    )


def _score(side: dict[str, Any]) -> str:
    value = graded_score(side["int8"])
    return "-" if value is None else f"{100 * value:.2f}%"


def _markdown(record: dict[str, Any]) -> str:
    ptq, learned = record["ptq"], record.get("learned")
    what = "top-1" if ptq["metric"] == "top1" else "agreement with fp32"
    lines = [
        "# Post-training int8 vs int8 learned from the float model (distillation, no labels)",
        "",
        f"**{record['verdict']}**",
        "",
        f"Held-out images (never used to choose a model): {ptq.get('holdout_images')}; metric: {what}; both graded "
        "against the original fp32 model.",
        "",
        f"| int8 model | {what} | drop (pts) | budget | nodes in float | int8 / float convs | speed vs fp32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, side in (("post-training", ptq), ("learned (distillation)", learned)):
        if side is None:
            continue
        lines.append(
            f"| {name} | {_score(side)} | {side['drop_points']:+.2f} | "
            f"{'met' if side['budget_met'] else 'missed'} ({side['max_drop']:g}) | {len(side['nodes_kept_float'])} | "
            f"{side['fusion'].get('int8_convs')} / {side['fusion'].get('float_convs')} | {side['speedup_p50']:.2f}x |"
        )
    loop = record.get("learning")
    if loop:
        b, a = loop["before"], loop["after"]
        lines += [
            "",
            f"Learning: {loop['steps']} steps of batch {loop['config']['batch_size']} on augmented views of "
            f"{loop['calibration_images']} calibration images, {loop['seconds']:.0f} s wall / "
            f"{loop['cpu_seconds']:.0f} s CPU (stopped by the {loop['stopped_by']}; load average "
            f"{loop['loadavg_start']} at start, {loop['loadavg_end']} at end). Simulated: {loop['simulated']}.",
            f"Fake-int8 vs float on {loop['config']['probe_images']} calibration images: agreement "
            f"{100 * b['agreement']:.1f}% -> {100 * a['agreement']:.1f}%, KL {b['kl']:.4f} -> {a['kl']:.4f}.",
        ]
    lines += ["", f"Published: {record.get('published') or 'nothing'}; post-training files: `{record.get('ptq_dir')}`"]
    return "\n".join(lines) + "\n"




def write_distill_report(record: dict[str, Any], out_dir: Path) -> None:
    atomic_write_text(out_dir / DISTILL_REPORT_JSON, json.dumps(record, indent=2) + "\n")
    atomic_write_text(out_dir / DISTILL_REPORT_MD, _markdown(record))


def _restore_ptq(ptq: QuantReport, learned: QuantReport, out_dir: Path, int8_path: Path) -> None:
    """Post-training measured better than the learned file: the learned search's files move to OUT/distill/ and
    post-training's come back to the normal names."""
    learned_dir, ptq_dir = out_dir / DISTILL_DIR, out_dir / PTQ_DIR
    for name in (REPORT_JSON, REPORT_MD, FRONTIER_PLOT, int8_path.name):
        if (out_dir / name).exists():
            os.replace(out_dir / name, learned_dir / name)
    if learned.written:
        learned.int8_model = str(learned_dir / int8_path.name)
    write_report(learned, learned_dir)
    for f in ptq_dir.iterdir():
        os.replace(f, out_dir / f.name)
    ptq_dir.rmdir()
    if ptq.written:
        ptq.int8_model = str(int8_path)
    if ptq.frontier_plot:
        ptq.frontier_plot = str(out_dir / FRONTIER_PLOT)
    write_report(ptq, out_dir)


def quantize_with_distillation(
    model: Any,
    fp32_path: Path,
    int8_path: Path,
    calibration: ImageList,
    validation: ImageList,
    contract: ModelContract,
    options: QuantizeOptions,
    distill_options: DistillOptions,
    log: Log = print,
    opset: int = DEFAULT_OPSET,
    exporter: Exporter = "auto",
) -> DistillOutcome:
    """Post-training int8 of ``fp32_path`` (the export of the torch ``model``); if it misses the budget (or
    ``--distill on``), distillation and int8 of the student. Never raises :class:`OverBudgetError`: the outcome
    carries it for the caller to raise after writing its own reports."""
    from edgecls.training.distill import distill
    from edgecls.training.student_graph import StudentPreparationError

    out_dir = int8_path.parent
    try:
        ptq = quantize_model(fp32_path, int8_path, calibration, validation, contract, options, log)
        ptq_error = None
    except OverBudgetError as e:
        ptq, ptq_error = e.report, e
    why = should_distill(ptq, distill_options, options, len(calibration))
    if not why:
        if not ptq.budget_met and distill_options.mode == "auto":
            log(
                "int8 not learned from the float model: "
                + ("--allow-over-budget accepts the miss" if options.allow_over_budget else
                   f"only {len(calibration)} calibration images (--distill auto needs {MIN_AUTO_IMAGES}; "
                   "--distill on forces it)")
            )  # fmt: skip
        record = {"ran": False, "mode": distill_options.mode, "ptq": report_side(ptq), "learned": None}
        record["verdict"] = compared_verdict("learning", ptq, None)
        write_distill_report(record, out_dir)
        return DistillOutcome(ptq, record, ptq_error)
    ptq_dir = move_ptq_files(ptq, out_dir, int8_path.name)
    recipe = distill_recipe(options.target)
    log(
        f"{why}: post-training {ptq.verdict}; learning int8 from the float "
        f"model on {len(calibration)} unlabelled calibration images (up to {distill_options.time_budget:.0f} s)"
    )
    load0 = os.getloadavg()
    try:
        learned_model = distill(
            model, calibration.inputs(contract), _config(distill_options, recipe), log, distill_options.progress
        )
    except StudentPreparationError as e:
        raise DistillUnavailableError(f"cannot learn int8 for this model: {e}") from e
    learning = {
        **learned_model.to_dict(),
        "calibration_images": len(calibration),
        "simulated": recipe.describe(),
        "loadavg_start": [round(v, 2) for v in load0],
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }
    student_contract = contract.with_provenance(
        distill={k: learning[k] for k in ("steps", "seconds", "cpu_seconds", "calibration_images", "simulated")}
    )
    student_dir = out_dir / DISTILL_DIR
    student_dir.mkdir(parents=True, exist_ok=True)
    student_fp32 = student_dir / DISTILL_FP32_NAME  # kept: the learned float weights the int8 file was made from
    t0 = time.perf_counter()
    export_to_onnx(learned_model.model, contract, student_fp32, opset=opset, exporter=exporter)
    parity = check_parity(
        learned_model.model, student_fp32, calibration.images[:PARITY_IMAGES], contract, variant="distill-fp32"
    )
    log(f"parity {parity.describe()}")
    if not parity.passed:
        raise ParityError(f"the learned model's ONNX export does not match PyTorch: {parity.describe()}")
    try:
        learned = quantize_model(
            student_fp32,
            int8_path,
            calibration,
            validation,
            student_contract,
            dataclasses.replace(options, recipes=(recipe,)),
            log,
            reference=fp32_path,
        )
        learned_error = None
    except OverBudgetError as e:
        learned, learned_error = e.report, e
    learning["search_seconds"] = round(time.perf_counter() - t0, 1)
    # Post-training back only if it measured better on the held-out half (possible when forced with --distill on).
    ptq_wins = (ptq.drop_points, not ptq.budget_met) < (learned.drop_points, not learned.budget_met)
    learned_dir = out_dir
    if ptq_wins and (ptq.written or not learned.written):
        _restore_ptq(ptq, learned, out_dir, int8_path)
        published, report, error = ("post-training" if ptq.written else None), ptq, ptq_error
        ptq_dir, learned_dir = out_dir, student_dir
    else:
        published, report, error = ("learned" if learned.written else None), learned, learned_error
    record = {
        "ran": True,
        "mode": distill_options.mode,
        "ptq": report_side(ptq),
        "learned": report_side(learned),
        "learning": learning,
        "ptq_dir": str(ptq_dir),  # post-training's quantization_report (and int8 file when written)
        "learned_dir": str(learned_dir),  # the learned search's
        "student_fp32": str(student_fp32),
        "published": published,
        "gain_points": round(ptq.drop_points - learned.drop_points, 3),
        "verdict": compared_verdict("learning", ptq, learned, published or "nothing"),
    }
    write_distill_report(record, out_dir)
    log(record["verdict"])
    return DistillOutcome(report, record, error)


def quantize_file_learning(
    model_path: str | os.PathLike[str],
    options: Any,
    torch_model: str,
    weights: str | os.PathLike[str] | None,
    distill_options: DistillOptions,
    log: Log = print,
) -> QuantReport:
    """``edgecls quantize MODEL.onnx --model FILE.py:FACTORY``: ``quantize_file`` with the torch model at hand, so
    int8 can be learned from it. ``options`` is a ``QuantizeFileOptions``. The torch model must compute what the
    ONNX file computes (checked on calibration images before anything is written): it is the teacher, and the
    learned int8 file is graded against the ONNX file."""
    from edgecls.export.quant.quantize_file import file_inputs
    from edgecls.models.user_model import build_user_model

    got = file_inputs(model_path, options, log)
    path = got.model
    model = build_user_model(torch_model, weights)
    parity = check_parity(model, path, got.calibration.images[:PARITY_IMAGES], got.contract, variant="torch-vs-file")
    if not parity.passed:
        raise DistillUnavailableError(
            f"--model {torch_model} does not compute what {path} computes ({parity.describe()}): give the torch "
            "model the ONNX file was exported from"
        )
    got.out_path.parent.mkdir(parents=True, exist_ok=True)
    outcome = quantize_with_distillation(
        model, path, got.out_path, got.calibration, got.validation, got.contract, options.quantize,
        distill_options, log,
    )  # fmt: skip
    if outcome.over_budget is not None:
        raise outcome.over_budget
    return outcome.report
