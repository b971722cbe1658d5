"""fp16 variant: weights and activations in float16, inputs and outputs kept float32.

Keeping float32 I/O (``keep_io_types=True``) means the runtime's preprocessing and postprocessing do not
change between variants. fp16 is for GPU/NPU providers; on the CPU provider it is usually slower than fp32
(onnxruntime#16778), which the export report states rather than hides.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import onnx

from edgecls.export.metadata import contract_of, embed_contract
from edgecls.export.onnx_export import lower_ir_version, write_model
from edgecls.runtime.errors import EdgeclsError


def convert_to_fp16(fp32_path: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> Path:
    """Write the float16 variant of ``fp32_path``; its contract gets ``provenance.variant = "fp16"``."""
    try:
        from onnxconverter_common import float16
    except ImportError as e:
        raise EdgeclsError("--fp16 needs onnxconverter-common (pip install onnxconverter-common)") from e
    model = onnx.load(str(fp32_path))
    contract = contract_of(model)
    with warnings.catch_warnings():  # it warns once per tiny weight it rounds to fp16's smallest value
        warnings.simplefilter("ignore")
        half = float16.convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    if contract is not None:
        embed_contract(half, contract.with_provenance(variant="fp16"))
    lower_ir_version(half)
    onnx.checker.check_model(half)
    return write_model(half, out_path)
