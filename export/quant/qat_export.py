"""``edgecls export RUN --quantize --qat EPOCHS``: when post-training int8 misses the budget, fine-tune with the
int8 rounding in the loop and quantize the result the same way.

Steps:
1. post-training quantization (``quantize_model``), exactly as without ``--qat``; within budget, that is the
   result and nothing is fine-tuned;
2. otherwise its files move to ``OUT/ptq/`` and the run's checkpoint is fine-tuned on the run's training split
   under fake quantization that simulates the target's first recipe (``simulated_recipe``;
   ``edgecls.training.qat``: BatchNorm folded, per-channel symmetric weights with the recipe's bit width,
   MinMax-calibrated uint8 activations from the same calibration images);
3. the fine-tuned float model is exported to ONNX (``OUT/qat/model.qat-fp32.onnx``, parity-checked against
   PyTorch) and quantized by the same ``quantize_model`` with that recipe (the search still tries bias
   correction and float nodes), graded against
   the *original* fp32 model on the same seeded search/held-out halves of the validation images: the verdict,
   the exit status and the published ``model.int8.onnx`` (a plain QDQ file, so ``run``/``bench``/``info`` need
   nothing new) are QAT's.
``qat_report.json``/``.md`` put PTQ's and QAT's held-out results side by side. Only edgecls training runs can
be fine-tuned: QAT needs the run's checkpoint and training data.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.export.onnx_export import DEFAULT_OPSET, Exporter, export_to_onnx
from edgecls.export.parity import ParityError, check_parity
from edgecls.export.quant.evaluate import graded_score
from edgecls.export.quant.image_sets import ImageList
from edgecls.export.quant.options import QuantizeOptions
from edgecls.export.quant.pipeline import OverBudgetError, quantize_model
from edgecls.export.quant.ptq_aside import compared_verdict, move_ptq_files, report_side
from edgecls.export.quant.recipes import QuantRecipe, candidate_recipes, plan_target
from edgecls.export.quant.report import QuantReport
from edgecls.export.run_data import DataRef, load_splits
from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.cpu_isa import detect_isa
from edgecls.runtime.errors import EdgeclsError

Log = Callable[[str], None]
QAT_DIR = "qat"
QAT_FP32_NAME = "model.qat-fp32.onnx"
QAT_REPORT_JSON = "qat_report.json"
QAT_REPORT_MD = "qat_report.md"
CALIB_BATCH = 16
PARITY_IMAGES = 16


class QatUnavailableError(EdgeclsError):
    """--qat was asked for a model that edgecls did not train (no checkpoint or training data to fine-tune)."""


@dataclass(frozen=True)
class QatSource:
    """What fine-tuning needs: the run's checkpoint (``edgecls.training.checkpoint.Checkpoint``) and its data."""

    checkpoint: Any
    data: DataRef


@dataclass
class QatOutcome:
    report: QuantReport  # the published int8 model's report (QAT's when it ran, else PTQ's)
    record: dict[str, Any]  # PTQ and QAT side by side (qat_report.json; export_report.json's "qat")
    over_budget: OverBudgetError | None


def require_qat_source(checkpoint: Any, data: DataRef | None, origin: str) -> QatSource:
    if data is None:
        raise QatUnavailableError(
            f"{origin}: --qat needs the run's training data, and the checkpoint does not say where it came from"
        )
    return QatSource(checkpoint, data)


def fake_quant_spec(recipe: QuantRecipe) -> Any:
    """The arithmetic ``recipe`` will apply (onnxruntime: reduce_range weights in [-64, 64], else [-127, 127])."""
    from edgecls.training.qat import FakeQuantSpec

    narrow = 64 if recipe.reduce_range else 127
    return FakeQuantSpec(
        weight_qmax=narrow,
        depthwise_weight_qmax=127 if recipe.depthwise_full_range else narrow,
        activation_signed=recipe.activation_type == "QInt8",
    )


def simulated_recipe(target: str) -> QuantRecipe:
    """The recipe QAT simulates and then quantizes with: the target's first choice, nothing kept in float.

    Not post-training's pick: on x86 without VNNI that may be full-range u8s8, whose saturating pair sums
    (VPMADDUBSW) the fake quantization does not model; the target's first recipe (7-bit weights in GEMM convs,
    8-bit depthwise on x86-avx2; u8s8 on VNNI; s8s8 on ARM) computes exactly what is simulated."""
    first = candidate_recipes(plan_target(target, detect_isa()))[0]
    return dataclasses.replace(first, name="qat", reason=f"fine-tuned with fake int8 (QAT); {first.reason}")


def _qat_config(checkpoint: Any, epochs: int, recipe: QuantRecipe, lr: float | None, max_batches: int | None) -> Any:
    from edgecls.training.config import TrainConfig
    from edgecls.training.qat import LR_SCALE, QatConfig

    train = TrainConfig.from_dict(checkpoint.raw.get("train_config") or {"data": ""})
    return QatConfig(
        epochs=epochs,
        lr=lr if lr is not None else train.resolved_lr() * LR_SCALE,
        batch_size=train.batch_size,
        weight_decay=train.resolved_weight_decay(),
        label_smoothing=train.label_smoothing,
        optimizer=train.optimizer,
        seed=train.seed,
        augment=train.resolved_augment(),
        spec=fake_quant_spec(recipe),
        max_batches=max_batches,
    )




def _calibration_batches(images: ImageList, contract: ModelContract) -> Callable[[], Iterator[np.ndarray]]:
    def batches() -> Iterator[np.ndarray]:
        for i in range(0, len(images), CALIB_BATCH):
            yield images.inputs_slice(contract, i, i + CALIB_BATCH)  # float32[B, 3, h, w]

    return batches




def _markdown(record: dict[str, Any]) -> str:
    ptq, qat = record["ptq"], record.get("qat")
    metric = ptq["metric"]
    what = "top-1" if metric == "top1" else "agreement with fp32"

    def score(acc: dict[str, Any]) -> str:
        value = graded_score(acc)
        return "-" if value is None else f"{100 * value:.2f}%"

    lines = [
        "# Post-training int8 vs quantization-aware fine-tuning",
        "",
        f"**{record['verdict']}**",
        "",
        f"Held-out images (never used to choose a model): {ptq.get('holdout_images')}; metric: {what}.",
        "",
        f"| model | {what} | drop (pts) | budget | nodes in float | int8 / float convs | speed vs fp32 |",
        "|---|---|---|---|---|---|---|",
        f"| fp32 | {score(ptq['fp32'])} | - | - | - | - | 1.00x |",
    ]
    for name, side in (("int8 post-training", ptq), (f"int8 QAT ({record.get('epochs')} epochs)", qat)):
        if side is None:
            continue
        lines.append(
            f"| {name} | {score(side['int8'])} | {side['drop_points']:+.2f} | "
            f"{'met' if side['budget_met'] else 'missed'} ({side['max_drop']:g}) | {len(side['nodes_kept_float'])} | "
            f"{side['fusion'].get('int8_convs')} / {side['fusion'].get('float_convs')} | {side['speedup_p50']:.2f}x |"
        )
    training = record.get("training")
    if training:
        lines += [
            "",
            f"Fine-tuning: {training['folded_batchnorms']} BatchNorm layers folded, {training['weight_points']} "
            f"weight / {training['activation_points']} activation fake-quant points, {training['seconds']:.0f} s.",
            "",
            "| epoch | loss | fake-int8 train accuracy | lr | seconds |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {h['epoch'] + 1} | {h['loss']:.4f} | {100 * h['acc']:.1f}% | {h['lr']:.2g} | {h['seconds']:.0f} |"
            for h in training["history"]
        ]
    lines += ["", f"Post-training files: `{record.get('ptq_dir') or '-'}`"]
    return "\n".join(lines) + "\n"




def write_qat_report(record: dict[str, Any], out_dir: Path) -> None:
    atomic_write_text(out_dir / QAT_REPORT_JSON, json.dumps(record, indent=2) + "\n")
    atomic_write_text(out_dir / QAT_REPORT_MD, _markdown(record))


def quantize_with_qat(
    source: QatSource,
    fp32_path: Path,
    int8_path: Path,
    calibration: ImageList,
    validation: ImageList,
    contract: ModelContract,
    options: QuantizeOptions,
    epochs: int,
    log: Log = print,
    lr: float | None = None,
    max_batches: int | None = None,
    opset: int = DEFAULT_OPSET,
    exporter: Exporter = "auto",
    always: bool = False,
) -> QatOutcome:
    """Post-training int8 of ``fp32_path``; if it misses the budget (or ``always``: benchmarks), QAT for
    ``epochs`` and int8 of that.

    Never raises :class:`OverBudgetError`: the outcome carries it (with both results) for the caller to raise
    after writing its own reports."""
    from edgecls.training.qat import quantization_aware_finetune

    out_dir = int8_path.parent
    try:
        ptq = quantize_model(fp32_path, int8_path, calibration, validation, contract, options, log)
        ptq_error = None
    except OverBudgetError as e:
        ptq, ptq_error = e.report, e
    if (ptq.budget_met and not always) or epochs <= 0:
        record = {"ran": False, "epochs": epochs, "ptq": report_side(ptq), "qat": None,
                  "verdict": compared_verdict("QAT", ptq, None)}
        write_qat_report(record, out_dir)
        return QatOutcome(ptq, record, ptq_error)
    ptq_dir = move_ptq_files(ptq, out_dir, int8_path.name)
    recipe = simulated_recipe(options.target)
    config = _qat_config(source.checkpoint, epochs, recipe, lr, max_batches)
    log(f"post-training int8: {ptq.verdict}{'' if ptq.budget_met else ' (missed)'}; fine-tuning with fake int8")
    model = source.checkpoint.build_model()
    train_images = load_splits(source.data).train
    trained = quantization_aware_finetune(
        model, train_images, contract, _calibration_batches(calibration, contract), config, log
    )
    training = {
        **trained.to_dict(),
        "epochs": epochs,
        "lr": config.lr,
        "train_images": len(train_images),
        "simulated": recipe.describe(),
    }
    qat_contract = contract.with_provenance(qat={k: v for k, v in training.items() if k != "history"})
    qat_dir = out_dir / QAT_DIR
    qat_dir.mkdir(parents=True, exist_ok=True)
    qat_fp32 = qat_dir / QAT_FP32_NAME  # kept: the fine-tuned float weights the int8 file was made from
    export_to_onnx(trained.model, contract, qat_fp32, opset=opset, exporter=exporter)
    parity_images = calibration.images[:PARITY_IMAGES]
    parity = check_parity(trained.model, qat_fp32, parity_images, contract, variant="qat-fp32")
    log(f"parity {parity.describe()}")
    if not parity.passed:
        raise ParityError(f"the fine-tuned model's ONNX export does not match PyTorch: {parity.describe()}")
    qat_options = dataclasses.replace(options, recipes=(recipe,))
    try:
        qat = quantize_model(
            qat_fp32, int8_path, calibration, validation, qat_contract, qat_options, log, reference=fp32_path
        )
        qat_error = None
    except OverBudgetError as e:
        qat, qat_error = e.report, e
    record = {
        "ran": True,
        "epochs": epochs,
        "ptq": report_side(ptq),
        "qat": report_side(qat),
        "training": training,
        "ptq_dir": str(ptq_dir),
        "qat_fp32": str(qat_fp32),
        "published": "qat" if qat.written else None,
        "gain_points": round(ptq.drop_points - qat.drop_points, 3),
        "verdict": compared_verdict("QAT", ptq, qat),
    }
    write_qat_report(record, out_dir)
    log(record["verdict"])
    return QatOutcome(qat, record, qat_error)
