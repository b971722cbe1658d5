"""Quantization-aware fine-tuning as an int8 repair (``edgecls export RUN --quantize --qat EPOCHS``): an edgecls
run's checkpoint is fine-tuned on its training split with the target's int8 rounding simulated in the loop, and
its fine-tuned float weights become a candidate of the same search, kept only when they measure better.

What it simulates (``simulated_recipe``): the target's first recipe, nothing kept in float
(``edgecls.training.qat``: BatchNorm folded, per-channel symmetric weights with the recipe's bit width,
MinMax-calibrated activations from the same calibration images). Not post-training's pick: on x86 without VNNI
that may be full-range u8s8, whose saturating pair sums (VPMADDUBSW) the fake quantization does not model; the
target's first recipe (7-bit weights in GEMM convs, 8-bit depthwise on x86-avx2; u8s8 on VNNI; s8s8 on ARM)
computes exactly what is simulated. The fine-tuned model is exported to ONNX in the search's scratch folder and
checked against PyTorch; the search quantizes it with that recipe (``QuantRecipe.fine_tuned``) and grades it
against the *original* fp32 model like every other trial. Only edgecls training runs can be fine-tuned: QAT needs
the run's checkpoint and training data (labels).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.export.onnx_export import DEFAULT_OPSET, Exporter, export_to_onnx
from edgecls.export.parity import ParityError, check_parity
from edgecls.export.quant.grading.image_sets import ImageList
from edgecls.export.quant.recipes import QuantRecipe, TargetPlan, candidate_recipes
from edgecls.export.run_data import DataRef, load_splits
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import EdgeclsError

Log = Callable[[str], None]
CALIB_BATCH = 16
PARITY_IMAGES = 16


class QatUnavailableError(EdgeclsError):
    """--qat was asked for a model that edgecls did not train (no checkpoint or training data to fine-tune)."""


@dataclass(frozen=True)
class QatPlan:
    """What fine-tuning needs and how long it runs: the run's checkpoint
    (``edgecls.training.checkpoint.Checkpoint``) and its data, ``epochs`` of QAT."""

    checkpoint: Any
    data: DataRef
    epochs: int
    lr: float | None = None  # None: edgecls.training.qat.LR_SCALE x the run's learning rate
    max_batches: int | None = None  # per epoch (tests)
    opset: int = DEFAULT_OPSET
    exporter: Exporter = "auto"
    always: bool = False  # fine-tune even when post-training int8 fits the budget (benchmarks)


def qat_plan(checkpoint: Any, data: DataRef | None, origin: str, **settings: Any) -> QatPlan:
    if data is None:
        raise QatUnavailableError(
            f"{origin}: --qat needs the run's training data, and the checkpoint does not say where it came from"
        )
    return QatPlan(checkpoint, data, **settings)


def fake_quant_spec(recipe: QuantRecipe) -> Any:
    """The arithmetic ``recipe`` will apply (onnxruntime: reduce_range weights in [-64, 64], else [-127, 127])."""
    from edgecls.training.qat import FakeQuantSpec

    narrow = 64 if recipe.reduce_range else 127
    return FakeQuantSpec(
        weight_qmax=narrow,
        depthwise_weight_qmax=127 if recipe.depthwise_full_range else narrow,
        activation_signed=recipe.activation_type == "QInt8",
    )


def simulated_recipe(plan: TargetPlan) -> QuantRecipe:
    """The recipe QAT simulates and then quantizes with: the target's first choice, on the fine-tuned weights."""
    first = candidate_recipes(plan)[0]
    why = f"fine-tuned with fake int8 (QAT); {first.reason}"
    return dataclasses.replace(first, name="qat", reason=why, fine_tuned=True)


def _qat_config(plan: QatPlan, recipe: QuantRecipe) -> Any:
    from edgecls.training.config import TrainConfig
    from edgecls.training.qat import LR_SCALE, QatConfig

    train = TrainConfig.from_dict(plan.checkpoint.raw.get("train_config") or {"data": ""})
    return QatConfig(
        epochs=plan.epochs,
        lr=plan.lr if plan.lr is not None else train.resolved_lr() * LR_SCALE,
        batch_size=train.batch_size,
        weight_decay=train.resolved_weight_decay(),
        label_smoothing=train.label_smoothing,
        optimizer=train.optimizer,
        seed=train.seed,
        augment=train.resolved_augment(),
        spec=fake_quant_spec(recipe),
        max_batches=plan.max_batches,
    )


def _calibration_batches(images: ImageList, contract: ModelContract) -> Callable[[], Iterator[np.ndarray]]:
    def batches() -> Iterator[np.ndarray]:
        for i in range(0, len(images), CALIB_BATCH):
            yield images.inputs_slice(contract, i, i + CALIB_BATCH)  # float32[B, 3, h, w]

    return batches


def fine_tune(
    plan: QatPlan, recipe: QuantRecipe, calibration: ImageList, contract: ModelContract, out: Path, log: Log
) -> dict[str, Any]:
    """Fine-tune the run under ``recipe``'s fake int8 and export the float result to ``out`` (parity-checked);
    returns what the training did (epochs, history, seconds; the report's ``qat``)."""
    from edgecls.training.qat import quantization_aware_finetune

    config = _qat_config(plan, recipe)
    train_images = load_splits(plan.data).train
    trained = quantization_aware_finetune(
        plan.checkpoint.build_model(), train_images, contract, _calibration_batches(calibration, contract), config,
        log,
    )  # fmt: skip
    export_to_onnx(trained.model, contract, out, opset=plan.opset, exporter=plan.exporter)
    parity = check_parity(trained.model, out, calibration.images[:PARITY_IMAGES], contract, variant="qat-fp32")
    log(f"parity {parity.describe()}")
    if not parity.passed:
        raise ParityError(f"the fine-tuned model's ONNX export does not match PyTorch: {parity.describe()}")
    return {
        **trained.to_dict(),
        "epochs": plan.epochs,
        "lr": config.lr,
        "train_images": len(train_images),
        "simulated": recipe.describe(),
    }
