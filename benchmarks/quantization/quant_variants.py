"""The int8 variants of one fp32 model that the quantization study compares.

edgecls's own search (``quantize_model``, the library behind ``edgecls quantize``), each single recipe without
any search, and onnxruntime's ``quantize_static`` used without edgecls. Every function writes ONNX files and
returns their paths; grading and timing them is measure_variants.py's job.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from study_env import log

from edgecls.export.quant.grading.image_sets import ImageList
from edgecls.export.quant.options import QuantizeOptions
from edgecls.export.quant.pipeline import OverBudgetError, quantize_model
from edgecls.export.quant.qdq.static_quantizer import StaticQuantizer
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.runtime.contract.model_contract import ModelContract


def naive_ort(fp32: Path, calib: ImageList, contract: ModelContract, work: Path) -> dict[str, Path]:
    """onnxruntime quantize_static without edgecls: its defaults, and u8s8 per-channel MinMax."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    name = onnx_input_name(fp32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([calib.inputs_slice(contract, i, i + 8) for i in range(0, len(calib), 8)])

        def get_next(self) -> dict | None:
            b = next(self.batches, None)
            return None if b is None else {name: b}

    work.mkdir(parents=True, exist_ok=True)
    out = {}
    for label, kw in (
        ("onnxruntime quantize_static defaults", {}),
        (
            "onnxruntime QDQ u8s8 per-channel MinMax",
            {"per_channel": True, "activation_type": QuantType.QUInt8, "weight_type": QuantType.QInt8},
        ),
    ):
        path = work / f"naive-{len(out)}.onnx"
        quantize_static(str(fp32), str(path), Reader(), **kw)
        out[label] = path
    return out


def onnx_input_name(path: Path) -> str:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    return next(i.name for i in m.graph.input if i.name not in inits)


def single_recipes(fp32: Path, calib: ImageList, contract: ModelContract, work: Path) -> dict[str, Path]:
    """One recipe each, no search, nothing kept float: what each ingredient is worth on its own."""
    work.mkdir(parents=True, exist_ok=True)
    quantizer = StaticQuantizer(fp32, calib, contract, work / "single")
    recipes = {
        "first recipe (u8s8 reduce_range), nothing float": QuantRecipe("rr", reduce_range=True),
        "u8s8 reduce_range, depthwise 8-bit, nothing float": QuantRecipe(
            "dw8", reduce_range=True, depthwise_full_range=True
        ),
        "same + bias correction": QuantRecipe(
            "dw8-bc", reduce_range=True, depthwise_full_range=True, bias_correction=True
        ),
        "full-range u8s8 + bias correction, nothing float": QuantRecipe("u8s8-bc", bias_correction=True),
        "depthwise 8-bit + bias correction + cross-layer equalisation, nothing float": QuantRecipe(
            "dw8-bc-eq", reduce_range=True, depthwise_full_range=True, bias_correction=True, equalize=True
        ),
        "depthwise 8-bit + bias correction + per-tensor calibration method, nothing float": QuantRecipe(
            "dw8-bc-pt",
            reduce_range=True,
            depthwise_full_range=True,
            bias_correction=True,
            calibrate_method="PerTensor",
        ),
    }
    return {label: quantizer.quantize(r, work / f"single-{i}.onnx") for i, (label, r) in enumerate(recipes.items())}


def run_edgecls(
    fp32: Path,
    calib: ImageList,
    val: ImageList,
    contract: ModelContract,
    out: Path,
    name: str,
    test: ImageList | None = None,
    **kw: Any,
) -> tuple[Path, dict[str, Any]]:
    """``edgecls quantize`` as a library call; over-budget models are written (marked) so they can be measured."""
    dest = out / name
    t0 = time.perf_counter()
    opts = QuantizeOptions(report_dir=str(dest), allow_over_budget=True, cache_dir=str(out / "cache"), **kw)
    try:
        report = quantize_model(fp32, dest / "model.int8.onnx", calib, val, contract, opts, log, test=test)
    except OverBudgetError as e:  # not raised with allow_over_budget; kept for clarity
        report = e.report
    d = report.to_dict()
    d["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return dest / "model.int8.onnx", d
