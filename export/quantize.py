"""int8 for any edgecls ONNX classifier: calibrate, quantize within an accuracy budget, measure, report.

``quantize_model`` is what ``edgecls export --quantize`` and ``edgecls quantize`` both call. The written
int8 model carries the fp32 model's contract with ``provenance.variant = "int8"`` and a ``quantization``
record (method, calibration images, ISA, measured accuracy change, nodes kept in float).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx
from edgecls.export.metadata import PRODUCER_NAME, contract_of, embed_contract
from edgecls.export.onnx_export import lower_ir_version, write_model
from edgecls.export.parity import onnx_logits
from edgecls.export.quant_data import MIN_CALIBRATION_IMAGES, ImageList
from edgecls.export.quant_eval import Accuracy, latency_ms
from edgecls.export.quant_isa import QuantRecipe, candidate_recipes, detect_isa
from edgecls.export.quant_report import QuantReport, write_report
from edgecls.export.quant_search import BudgetSearch
from edgecls.export.quant_static import StaticQuantizer
from edgecls.runtime.contract import ModelContract
from edgecls.runtime.errors import ContractError

DEFAULT_MAX_DROP = 1.0  # percentage points of top-1 (or of agreement with fp32 when unlabelled)

Log = Callable[[str], None]


@dataclass
class QuantizeOptions:
    max_drop: float = DEFAULT_MAX_DROP
    latency_runs: int = 50
    latency_warmup: int = 10
    sensitivity_images: int = 64
    recipes: list[QuantRecipe] | None = None  # None: chosen from the CPU's instruction set
    report_dir: str | None = None  # None: beside the int8 model


def _contract_for(fp32_path: Path, contract: ModelContract | None) -> ModelContract:
    if contract is not None:
        return contract
    found = contract_of(onnx.load(str(fp32_path), load_external_data=False))
    if found is None:
        raise ContractError(
            f"{fp32_path}: model has no edgecls contract; pass --labels, --img-size and the "
            "preprocessing flags"
        )
    return found


def quantize_model(
    fp32_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    calibration: ImageList,
    validation: ImageList,
    contract: ModelContract | None = None,
    options: QuantizeOptions | None = None,
    log: Log = print,
) -> QuantReport:
    """Write the int8 QDQ model of ``fp32_path`` to ``out_path`` and its report beside it."""
    t0 = time.perf_counter()
    opts = options or QuantizeOptions()
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    contract = _contract_for(fp32_path, contract)
    isa = detect_isa()
    candidates = opts.recipes or candidate_recipes(isa)
    warnings_: list[str] = []
    if len(calibration) < MIN_CALIBRATION_IMAGES:
        warnings_.append(
            f"only {len(calibration)} calibration images (fewer than {MIN_CALIBRATION_IMAGES}): "
            "activation ranges may be noisy"
        )
    for role, images in (("calibration", calibration), ("validation", validation)):
        if images.skipped:
            warnings_.append(
                f"{len(images.skipped)} unreadable {role} images skipped, e.g. {images.skipped[0]}"
            )
    for w in warnings_:
        log(f"warning: {w}")
    log(
        f"int8: {isa.isa} CPU; calibrating on {len(calibration)} images, budget {opts.max_drop:g} pts on "
        f"{len(validation)} validation images"
    )

    inputs = validation.inputs(contract)  # float32[N, 3, h, w], computed once for every trial
    fp32_logits = onnx_logits(fp32_path, inputs)
    labels = validation.labels
    fp32_acc = Accuracy(None if labels is None else float((fp32_logits.argmax(1) == labels).mean()), 1.0, 0.0)
    with tempfile.TemporaryDirectory(prefix="edgecls-quant-") as tmp:
        quantizer = StaticQuantizer(fp32_path, calibration, contract, tmp)
        search = BudgetSearch(
            quantizer,
            inputs,
            labels,
            fp32_logits,
            opts.max_drop,
            Path(tmp),
            log=log,
            sensitivity_images=opts.sensitivity_images,
        )
        result = search.run(candidates)
        best = result.best
        recipe = best.recipe
        metric = "top1" if labels is not None else "agreement"
        int8_contract = contract.with_provenance(
            variant="int8",
            quantization={
                "method": recipe.describe(),
                "format": "QDQ",
                "activation_type": recipe.activation_type,
                "weight_type": recipe.weight_type,
                "per_channel": recipe.per_channel,
                "reduce_range": recipe.reduce_range,
                "calibrate_method": recipe.calibrate_method,
                "calibration": calibration.source,
                "images": len(calibration),
                "isa": isa.isa,
                "metric": metric,
                "accuracy_fp32": fp32_acc.score,
                "accuracy_int8": best.accuracy.score,
                "accuracy_change_points": -best.drop_points,
                "agreement": best.accuracy.agreement,
                "validation_images": len(validation),
                "max_drop": opts.max_drop,
                "budget_met": result.budget_met,
                "nodes_kept_float": list(recipe.nodes_to_exclude),
            },
        )
        model = onnx.load(str(best.path))
        model.producer_name = PRODUCER_NAME
        embed_contract(model, int8_contract)
        lower_ir_version(model)
        onnx.checker.check_model(model)
        write_model(model, out_path)
    shape = (3, *contract.input_size)
    latency = {
        name: latency_ms(p, shape, opts.latency_runs, opts.latency_warmup)
        for name, p in (("fp32", fp32_path), ("int8", out_path))
    }
    report = QuantReport(
        fp32_model=str(fp32_path),
        int8_model=str(out_path),
        isa=isa.to_dict(),
        recipe=recipe.to_dict(),
        metric=metric,
        calibration={
            "source": calibration.source,
            "images": len(calibration),
            "skipped": len(calibration.skipped),
        },
        validation={
            "source": validation.source,
            "images": len(validation),
            "skipped": len(validation.skipped),
        },
        fp32=fp32_acc.to_dict(),
        int8=best.accuracy.to_dict(),
        drop_points=best.drop_points,
        max_drop=opts.max_drop,
        budget_met=result.budget_met,
        nodes_kept_float=list(recipe.nodes_to_exclude),
        size_bytes={"fp32": fp32_path.stat().st_size, "int8": out_path.stat().st_size},
        latency=latency,
        speedup_p50=latency["fp32"]["p50_ms"] / max(latency["int8"]["p50_ms"], 1e-9),
        preprocess=quantizer.preprocess_note,
        trials=[t.to_dict() for t in result.trials],
        sensitivity_top=[{"node": n, "relative_error": e} for n, e in result.sensitivity[:10]],
        warnings=warnings_,
        seconds=round(time.perf_counter() - t0, 1),
    )
    write_report(report, opts.report_dir or out_path.parent)
    log(report.verdict())
    return report
