"""The export pipeline: a trained model -> model.onnx (+ golden file, fp16, int8), each checked, all atomic.

Output directory layout::

    model.onnx              fp32, contract in metadata_props (provenance.variant = "fp32")
    model.golden.npz        inputs + expected PyTorch logits for torch-free runtime tests (see golden.py)
    model.fp16.onnx         with --fp16 (float32 inputs/outputs)
    model.int8.onnx         with --quantize, plus quantization_report.json / .md
    export_report.json      what was done and measured

The fp32 file is published only after parity passes (it is written to a temporary sibling first), and data
problems (missing run data, unreadable calibration folders) are found before anything is
written.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import nn

from edgecls.export.fp16 import convert_to_fp16
from edgecls.export.golden import make_golden, write_golden
from edgecls.export.onnx_export import DEFAULT_OPSET, EXPORTERS, Exporter, export_to_onnx
from edgecls.export.parity import FP32_ATOL, ParityError, ParityResult, check_parity
from edgecls.export.quant.grading.image_sets import ImageList, images_from_run, load_int8_images, load_role_images
from edgecls.export.quant.options import Int8Images, QuantizeOptions
from edgecls.export.quant.pipeline import OverBudgetError, quantize_model
from edgecls.export.quant.repairs.qat import QatPlan, QatUnavailableError, qat_plan
from edgecls.export.run_data import DataRef, data_ref_of
from edgecls.runtime.atomic import atomic_path, atomic_write_text
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.device.golden_file import golden_path_for
from edgecls.runtime.errors import DataError, EdgeclsError

Log = Callable[[str], None]

FP32_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"
FP16_NAME = "model.fp16.onnx"
REPORT_NAME = "export_report.json"


@dataclass(frozen=True)
class ExportOptions:
    """What ``edgecls export`` writes and checks; the int8 step's own settings are in ``quantize``."""

    out_dir: str | None = None  # None: <run dir>/export
    opset: int = DEFAULT_OPSET
    exporter: Exporter = "auto"
    fp16: bool = False
    data: str | None = None  # images for the parity check; None: the run's val split (or the validation images)
    parity_images: int = 32
    quantize: QuantizeOptions | None = None  # None: no int8 model
    int8_images: Int8Images = Int8Images()  # read only with ``quantize``
    qat_epochs: int = 0  # --qat: quantization-aware fine-tuning when post-training int8 misses (edgecls runs only)
    qat_lr: float | None = None  # None: edgecls.training.qat.LR_SCALE x the run's learning rate

    def __post_init__(self) -> None:
        if self.exporter not in EXPORTERS:
            raise EdgeclsError(f"--exporter must be {', '.join(EXPORTERS)}, got {self.exporter!r}")


@dataclass
class ExportReport:
    out_dir: str
    files: dict[str, str]
    exporter: str
    opset: int
    fallback_reason: str | None
    parity: list[dict[str, Any]]
    parity_images: str
    quantization: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    source_checkpoint: str | None = None  # the checkpoint exported (absolute): `bench DIR` finds it here
    qat: dict[str, Any] | None = None  # --qat: what the fine-tuning did (quantization_report.json's "qat")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExportInputs:
    """What the pipeline needs besides the model: images for each role, loaded (and validated) up front."""

    parity: ImageList
    calibration: ImageList | None = None
    validation: ImageList | None = None
    test: ImageList | None = None  # a run's test split: int8 is reported on it, never chosen on it


def resolve_inputs(
    options: ExportOptions, contract: ModelContract, ref: DataRef | None, origin: str, log: Log = print
) -> ExportInputs:
    """Load parity / calibration / validation images, failing before any file is written."""
    if options.quantize is None:
        return ExportInputs(_parity_images(options, contract, ref, origin))
    sources = options.int8_images
    if sources.val is None and options.data is not None:  # --data is the model's domain: grade int8 on it too
        sources = replace(sources, val=options.data)
    calibration, validation = load_int8_images(sources, contract, ref, origin, log)
    if options.data is None and ref is None:  # no run data: the validation images are the model's domain
        parity = ImageList(validation.source, validation.images[: options.parity_images], None, [])
        log(f"the parity check uses {len(parity)} of the validation images")
    else:
        parity = _parity_images(options, contract, ref, origin)
    test = _run_test_images(ref, contract, sources.val_images, log) if ref is not None else None
    return ExportInputs(parity, calibration, validation, test)


def _run_test_images(ref: DataRef, contract: ModelContract, limit: int, log: Log) -> ImageList | None:
    """The run's test split for the int8 report (None when the run has none)."""
    try:
        return images_from_run(ref, "test", contract, limit)
    except DataError as e:
        log(f"int8: no test split to report on ({e})")
        return None


def _parity_images(options: ExportOptions, contract: ModelContract, ref: DataRef | None, origin: str) -> ImageList:
    if options.data is not None:
        return load_role_images(options.data, contract, "the parity check", options.parity_images, "val")
    if ref is None:
        raise DataError(f"{origin}: cannot tell which data the model was trained on; pass --data")
    return images_from_run(ref, "val", contract, options.parity_images)


def default_out_dir(run_or_checkpoint: str | os.PathLike[str]) -> Path:
    p = Path(run_or_checkpoint)
    return (p if p.is_dir() else p.parent) / "export"


def export_model(
    model: nn.Module,
    contract: ModelContract,
    out_dir: str | os.PathLike[str],
    inputs: ExportInputs,
    options: ExportOptions,
    log: Log = print,
    source_checkpoint: str | None = None,
    qat: QatPlan | None = None,
) -> ExportReport:
    """Export ``model`` with ``contract`` into ``out_dir``: fp32, parity, golden, then fp16/int8.

    ``qat`` (an edgecls run's checkpoint and data) is required by ``options.qat_epochs``."""
    t0 = time.perf_counter()
    if options.qat_epochs and not options.quantize:
        raise QatUnavailableError("--qat fine-tunes for int8: it needs --quantize")
    if options.qat_epochs and qat is None:
        raise QatUnavailableError(
            "--qat fine-tunes an edgecls training run (it needs the run's checkpoint and training data); "
            "a --model model is quantized post-training only: drop --qat"
        )
    out = Path(out_dir)
    fp32_path = out / FP32_NAME
    contract = contract.with_provenance(variant="fp32")
    images = inputs.parity.images
    with atomic_path(fp32_path) as tmp:
        result = export_to_onnx(model, contract, tmp, opset=options.opset, exporter=options.exporter)
        parity = check_parity(model, tmp, images, contract)
        golden = make_golden(images, contract, model)
        golden_parity = check_parity(model, tmp, list(golden["images"]), contract)
        golden_parity.variant = "fp32-golden"
        for p in (parity, golden_parity):
            log(f"parity {p.describe()}")
            if not p.passed:
                raise ParityError(f"ONNX export does not match PyTorch: {p.describe()}; nothing was written")
    how = result.exporter + (f" (dynamo failed: {result.fallback_reason})" if result.fallback_reason else "")
    log(f"wrote {fp32_path} (opset {result.opset}, {result.nodes} nodes, exporter {how})")
    files = {"fp32": str(fp32_path), "golden": str(write_golden(golden_path_for(fp32_path), golden))}
    parities: list[ParityResult] = [parity, golden_parity]
    warnings: list[str] = []
    if options.fp16:
        fp16_path = convert_to_fp16(fp32_path, out / FP16_NAME)
        p16 = check_parity(model, fp16_path, images, contract, variant="fp16", atol=None)
        log(f"parity {p16.describe()}")
        if p16.top1_mismatches:
            warnings.append(f"fp16 changes the top-1 class on {p16.top1_mismatches}/{p16.images} parity images")
        parities.append(p16)
        files["fp16"] = str(fp16_path)
    quant, over_budget = None, None
    if options.quantize is not None:
        assert inputs.calibration is not None and inputs.validation is not None
        try:
            report = quantize_model(
                fp32_path, out / INT8_NAME, inputs.calibration, inputs.validation, contract, options.quantize, log,
                test=inputs.test, qat=qat,
            )  # fmt: skip
        except OverBudgetError as e:  # fp32 and the reports are written; the error says why int8 is not
            over_budget, report = e, e.report
        if report.written:
            files["int8"] = report.int8_model
        files["quantization_report"] = str(out / "quantization_report.json")
        quant = report.summary()
    report_obj = ExportReport(
        out_dir=str(out),
        files=files,
        exporter=result.exporter,
        opset=result.opset,
        fallback_reason=result.fallback_reason,
        parity=[p.to_dict() for p in parities],
        parity_images=f"{len(images)} images from {inputs.parity.source}",
        quantization=quant,
        warnings=warnings,
        seconds=round(time.perf_counter() - t0, 1),
        source_checkpoint=source_checkpoint,
        qat=None if quant is None else quant["qat"],
    )
    atomic_write_text(out / REPORT_NAME, json.dumps(report_obj.to_dict(), indent=2) + "\n")
    files["report"] = str(out / REPORT_NAME)
    if over_budget is not None:
        raise over_budget
    return report_obj


def export_checkpoint(
    run_or_checkpoint: str | os.PathLike[str],
    options: ExportOptions | None = None,
    log: Log = print,
    trust_checkpoint: bool = False,
) -> ExportReport:
    """``edgecls export RUN_OR_CHECKPOINT``: rebuild the trained model and export it with its contract."""
    from edgecls.training.checkpoint import load_checkpoint

    options = options or ExportOptions()
    ckpt = load_checkpoint(run_or_checkpoint, trust=trust_checkpoint)
    model = ckpt.build_model()
    contract = ckpt.contract.with_provenance(
        arch=ckpt.arch,
        arch_kwargs=ckpt.arch_kwargs,
        checkpoint_sha256=ckpt.sha256,
        checkpoint=ckpt.path.name,
        metrics=ckpt.contract.provenance.get("metrics", ckpt.raw.get("metrics", {})),
    )
    ref = data_ref_of(ckpt.raw, ckpt.path)
    qat = (
        qat_plan(ckpt, ref, str(ckpt.path), epochs=options.qat_epochs, lr=options.qat_lr, opset=options.opset,
                 exporter=options.exporter)
        if options.qat_epochs and options.quantize
        else None
    )  # fmt: skip
    inputs = resolve_inputs(options, contract, ref, str(ckpt.path), log)
    out = Path(options.out_dir) if options.out_dir else default_out_dir(run_or_checkpoint)
    return export_model(
        model, contract, out, inputs, options, log, source_checkpoint=str(ckpt.path.resolve()), qat=qat
    )


__all__ = ["ExportOptions", "ExportReport", "FP32_ATOL", "export_checkpoint", "export_model"]
