"""``edgecls quantize MODEL.onnx`` as one library call: contract, images, budget search, files written.

:func:`quantize_file` does everything the command does; the command only turns its flags into
:class:`QuantizeFileOptions` and prints the result. The contract comes from the file (the contract flags
override its fields) or, for a file without one, from the flags alone (``--labels`` and ``--input-size``
required). Calibration and validation images are loaded before anything is written; with no ``--val`` a
folder is split (seeded, disjoint) so no image is graded that was calibrated on. Writes ``STEM.int8.onnx`` and
``quantization_report.json/.md`` (+ the frontier plot) into ``out_dir`` (default: beside the model); over
budget, :class:`~edgecls.export.quant.pipeline.OverBudgetError` (exit status 3) carries the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgecls.export.metadata import read_contract_file
from edgecls.export.quant.grading.image_sets import ImageList, load_int8_images
from edgecls.export.quant.options import Int8Images, QuantizeOptions
from edgecls.export.quant.pipeline import quantize_model
from edgecls.export.quant.report import QuantReport
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.contract.options import ContractOptions, contract_from_options
from edgecls.runtime.errors import DataError, ModelLoadError
from edgecls.runtime.inference.batched_inference import fixed_batch_of


@dataclass(frozen=True)
class QuantizeFileOptions:
    """Everything ``edgecls quantize`` is told besides the model file."""

    images: Int8Images  # ``calib`` is required: a model file carries no data of its own
    out_dir: str | None = None  # None: beside the model
    contract: ContractOptions = ContractOptions()  # fields to set (a file without a contract needs them)
    quantize: QuantizeOptions = QuantizeOptions()  # ``report_dir`` None: ``out_dir`` too


def int8_path_for(model_path: Path, out_dir: Path) -> Path:
    """``model.onnx`` -> ``out_dir/model.int8.onnx``."""
    stem = model_path.name[: -len(".onnx")] if model_path.name.endswith(".onnx") else model_path.stem
    return out_dir / f"{stem}.int8.onnx"


def file_contract(model_path: Path, options: ContractOptions) -> ModelContract:
    """The file's contract with the given fields replaced; for a file without one, the fields alone."""
    base = read_contract_file(model_path)
    provenance = None if base is not None else {"source": "foreign-onnx", "arch": model_path.name}
    return contract_from_options(options, base, provenance)


def _refuse_fixed_batch(model: Path) -> None:
    """ModelLoadError when the model's input has a fixed batch size: the search calibrates in batches of 8 and
    times single images, which onnxruntime refuses for such a graph (a traceback midway, files half written)."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    first = next(i for i in graph.input if i.name not in inits)
    dims = first.type.tensor_type.shape.dim
    fixed = fixed_batch_of([d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims])
    if fixed is not None:
        raise ModelLoadError(
            f"{model}: input {first.name!r} has a fixed batch size of {fixed}; int8 quantization needs a dynamic "
            f"batch dimension: export the model again with one (torch.onnx.export(..., dynamic_axes="
            f"{{{first.name!r}: {{0: 'batch'}}}}))"
        )


@dataclass(frozen=True)
class FileInputs:
    """What quantizing a model file needs, all loaded before anything is written."""

    model: Path
    contract: ModelContract
    calibration: ImageList
    validation: ImageList
    out_path: Path  # out_dir/STEM.int8.onnx


def file_inputs(
    model_path: str | os.PathLike[str], options: QuantizeFileOptions, log: Callable[[str], None] = print
) -> FileInputs:
    """The model file, its contract and the images: ModelLoadError/ContractError/DataError (exit status 2) when
    one is missing, before anything is written."""
    model = Path(model_path)
    if not model.is_file():
        raise ModelLoadError(f"{model}: no such model file")
    if options.images.calib is None:
        raise DataError("quantize needs calibration images: --calib DATA (a folder or builtin:NAME)")
    contract = file_contract(model, options.contract)
    _refuse_fixed_batch(model)
    calibration, validation = load_int8_images(options.images, contract, None, str(model), log)
    out_dir = Path(options.out_dir) if options.out_dir else model.parent
    return FileInputs(model, contract, calibration, validation, int8_path_for(model, out_dir))


def quantize_file(
    model_path: str | os.PathLike[str], options: QuantizeFileOptions, log: Callable[[str], None] = print
) -> QuantReport:
    """Quantize the fp32 ONNX classifier at ``model_path`` within ``options.quantize.max_drop`` points.

    Returns the report of a model written within budget (or over it with ``allow_over_budget``); raises
    OverBudgetError after writing the report otherwise, and ModelLoadError/ContractError/DataError (exit
    status 2) before writing anything when the model, its contract or the images are missing.
    """
    got = file_inputs(model_path, options, log)
    return quantize_model(got.model, got.out_path, got.calibration, got.validation, got.contract, options.quantize,
                          log)  # fmt: skip
