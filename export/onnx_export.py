"""PyTorch -> ONNX: dynamic batch axis, a chosen opset, exporter fallback, checks and clean-up.

Tensor names in every exported graph: input ``input`` float32[batch, 3, H, W], output ``logits``
float32[batch, num_classes]; ``batch`` is a symbolic dimension so the runtime may batch freely.

The dynamo exporter (``torch.onnx.export(dynamo=True)``) is tried first (it implements opset >= 18; lower
opsets are reached with onnx's version converter); when it raises or its graph cannot be converted, the
TorchScript exporter (``dynamo=False``) is used and the reason is recorded. Real third-party models do
fail the dynamo path: a third-party EfficientNet-Lite0 did with torch 2.13 on a 2-core AMD EPYC (November
2026), where the TorchScript exporter worked; so the fallback stays, and the reason is kept in the export report.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnx
import torch
from torch import nn

from edgecls.export.metadata import PRODUCER_NAME, embed_contract
from edgecls.runtime.atomic import atomic_write_bytes
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import EdgeclsError

#: Opset 17 loads in onnxruntime >= 1.13 (late 2022), so older edge builds run our files (onnxruntime#20559).
DEFAULT_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"

Exporter = Literal["auto", "dynamo", "torchscript"]
EXPORTERS: tuple[Exporter, ...] = ("auto", "dynamo", "torchscript")


class ExportError(EdgeclsError):
    """The model could not be converted to a valid ONNX graph."""


@dataclass
class OnnxExportResult:
    path: Path
    exporter: str  # the exporter that produced the file: "dynamo" or "torchscript"
    opset: int
    ir_version: int
    nodes: int  # after clean-up
    fallback_reason: str | None  # why dynamo was not used (auto mode), else None


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """The exporters print pages of deprecation warnings and INFO logs; users need only our one line."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:200]}" if text else type(e).__name__


def _export_dynamo(model: nn.Module, example: torch.Tensor, opset: int) -> onnx.ModelProto:
    """The dynamo exporter implements opset >= 18; lower opsets are reached with onnx's version converter."""
    with _quiet_exporters(), contextlib.redirect_stderr(io.StringIO()):
        program = torch.onnx.export(
            model,
            (example,),
            None,
            dynamo=True,
            opset_version=max(opset, 18),
            dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            external_data=False,
            optimize=True,
            verbose=False,
        )
    proto = program.model_proto
    if _default_opset(proto) != opset:
        proto = _down_convert(proto, opset)
    return proto


def _down_convert(proto: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """Opset 18 -> ``opset``: fold constants first (Reduce* axes must be constants to become attributes),
    convert, then drop the one attribute the converter leaves behind that older opsets reject."""
    import onnxscript.optimizer

    with _quiet_exporters():
        proto = onnxscript.optimizer.optimize(proto)
    proto = onnx.version_converter.convert_version(proto, opset)
    if opset < 18:
        for node in proto.graph.node:
            if node.op_type.startswith("Reduce") and node.op_type != "ReduceSum":
                kept = [a for a in node.attribute if a.name != "noop_with_empty_axes"]
                del node.attribute[:]
                node.attribute.extend(kept)
    if _default_opset(proto) != opset:
        raise ExportError(f"dynamo exporter gave opset {_default_opset(proto)}, not the requested {opset}")
    onnx.checker.check_model(proto)
    return proto


def _export_torchscript(model: nn.Module, example: torch.Tensor, opset: int) -> onnx.ModelProto:
    buf = io.BytesIO()
    with _quiet_exporters():
        torch.onnx.export(
            model,
            (example,),
            buf,
            dynamo=False,
            opset_version=opset,
            do_constant_folding=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}},
        )
    return onnx.load_from_string(buf.getvalue())


def _default_opset(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), -1)


def _clean_up(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Constant folding and dead-node removal (onnxscript's optimizer), then strict shape inference.

    The TorchScript path leaves Constant/Identity chains (MobileNetV2: 209 nodes -> 100 after this).
    """
    import onnxscript.optimizer

    with _quiet_exporters():
        proto = onnxscript.optimizer.optimize(proto)
    return onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)


def _check_io(proto: onnx.ModelProto, contract: ModelContract) -> None:
    """The graph must be the classifier the contract describes: one image input, one [batch, C] output."""
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1 or len(proto.graph.output) != 1:
        raise ExportError(
            f"expected 1 input and 1 output, got {len(inputs)} inputs and {len(proto.graph.output)} outputs"
        )
    dims = [d.dim_value or d.dim_param for d in proto.graph.output[0].type.tensor_type.shape.dim]
    if len(dims) != 2 or (isinstance(dims[1], int) and dims[1] and dims[1] != contract.num_classes):
        raise ExportError(
            f"model output has shape {dims} but the contract has {contract.num_classes} labels; "
            "labels must match the number of model outputs"
        )


def export_to_onnx(
    model: nn.Module,
    contract: ModelContract,
    out_path: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    exporter: Exporter = "auto",
) -> OnnxExportResult:
    """Export ``model`` (float32[N,3,H,W] -> float32[N,C]) to ``out_path`` with ``contract`` embedded.

    The file is validated (``onnx.checker`` full check) before it is written atomically.
    """
    model = model.eval()
    h, w = contract.input_size
    # Batch 2, not 1: a batch of 1 lets exporters specialise the batch dimension to a constant.
    example = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    fallback_reason: str | None = None
    proto: onnx.ModelProto | None = None
    used = exporter
    if exporter in ("auto", "dynamo"):
        try:
            proto = _export_dynamo(model, example, opset)
            used = "dynamo"
        except Exception as e:  # the dynamo exporter raises many types; any failure means "fall back"
            if exporter == "dynamo":
                raise ExportError(f"dynamo exporter failed: {_first_line(e)}") from e
            fallback_reason = _first_line(e)
    if proto is None:
        try:
            proto = _export_torchscript(model, example, opset)
            used = "torchscript"
        except Exception as e:
            raise ExportError(f"ONNX export failed: {_first_line(e)}") from e
    try:
        proto = _clean_up(proto)
        _check_io(proto, contract)
        proto.producer_name = PRODUCER_NAME
        from edgecls import __version__

        proto.producer_version = str(__version__)
        del proto.metadata_props[:]  # exporter-internal node-name maps are noise for users
        embed_contract(proto, contract)
        lower_ir_version(proto)
        onnx.checker.check_model(proto, full_check=True)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"exported graph is invalid: {_first_line(e)}") from e
    write_model(proto, out_path)
    return OnnxExportResult(
        path=Path(out_path),
        exporter=used,
        opset=_default_opset(proto),
        ir_version=proto.ir_version,
        nodes=len(proto.graph.node),
        fallback_reason=fallback_reason,
    )


def lower_ir_version(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Drop unused opset imports and set the IR version to the lowest the opsets allow (opset 17 -> IR 8).

    Exporters and the quantizer stamp their newest IR version, which older onnxruntime builds refuse to
    load even when every operator is old (onnxruntime#20559); the checker run afterwards validates it.
    """
    from onnx import helper

    used = {n.domain for n in proto.graph.node} | {"", "ai.onnx"}
    unused = [o for o in proto.opset_import if o.domain not in used]  # quant_pre_process adds a few
    for o in unused:
        proto.opset_import.remove(o)
    standard = [o for o in proto.opset_import if o.domain in ("", "ai.onnx", "ai.onnx.ml")]
    try:  # vendor domains (com.microsoft, used by some quantized ops) put no constraint on the IR version
        proto.ir_version = min(proto.ir_version, helper.find_min_ir_version_for(standard))
    except ValueError:  # an opset this onnx does not know: leave the file as it is
        pass
    return proto


def write_model(proto: onnx.ModelProto, out_path: str | os.PathLike[str]) -> Path:
    """Serialise a (< 2 GB, single-file) model atomically."""
    return atomic_write_bytes(out_path, proto.SerializeToString())
