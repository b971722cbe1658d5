"""``edgecls info MODEL``: the contract and a graph summary of any ONNX file.

With the ``onnx`` package (train extra) the graph itself is read: opset, parameter count, operator counts.
On a device with only onnxruntime the same command reports what a session exposes (inputs, outputs,
metadata, contract) and says the rest needs ``onnx``. :func:`describe` is the command as a library call: the
model's description, the engine each provider uses here and, with a provider or precision, the engine a real
session on it runs.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgecls.runtime.contract.model_contract import METADATA_KEY, ModelContract, contract_from_metadata
from edgecls.runtime.errors import ContractError, ModelLoadError
from edgecls.runtime.providers.precision import Precision
from edgecls.runtime.terminal.int8_notices import int8_notices
from edgecls.runtime.terminal.notice_memory import ACKNOWLEDGED, remember, told


@dataclass(frozen=True)
class InfoOptions:
    """What ``edgecls info`` describes (its flags, one field each)."""

    model: Path
    provider: str | None = None  # also load the model on this provider and report the engine it runs
    precision: Precision | None = None  # what OpenVINO computes in for that session (implies provider auto)
    acknowledge: bool = False  # record the int8 notices as read: no command prints them again for this user


@dataclass
class TensorInfo:
    name: str
    dtype: str
    shape: list[int | str | None]


@dataclass
class ModelInfo:
    path: str
    size_bytes: int
    source: str  # "onnx" (full graph read) or "onnxruntime" (session metadata only)
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    producer: str
    contract: dict[str, Any] | None
    contract_error: str | None = None
    opset: int | None = None
    ir_version: int | None = None
    parameters: int | None = None
    op_counts: dict[str, int] = field(default_factory=dict)
    quantized: bool | None = None  # QDQ / QLinear ops present
    metadata: dict[str, str] = field(default_factory=dict)  # other metadata_props entries
    int8_warnings: list[str] = field(default_factory=list)  # int8 notices in full: verdict, this CPU vs its target
    # each notice's kind -> what this user was told: "not shown" | "shown" | "acknowledged"
    # (runtime.terminal.notice_memory)
    notices_told: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _contract(meta: dict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    try:
        c: ModelContract | None = contract_from_metadata(meta)
    except ContractError as e:
        return None, str(e)
    return (c.to_dict() if c else None), None


def _dims(shape: Any) -> list[int | str | None]:
    return [d if isinstance(d, int | str) or d is None else str(d) for d in shape]


def _from_session(path: Path) -> ModelInfo:
    from edgecls.runtime.providers.session import create_session

    sess, _ = create_session(path, provider="cpu", threads=1)
    meta = sess.get_modelmeta()
    custom = dict(meta.custom_metadata_map)
    contract, error = _contract(custom)
    return ModelInfo(
        path=str(path),
        size_bytes=path.stat().st_size,
        source="onnxruntime",
        inputs=[TensorInfo(i.name, i.type, _dims(i.shape)) for i in sess.get_inputs()],
        outputs=[TensorInfo(o.name, o.type, _dims(o.shape)) for o in sess.get_outputs()],
        producer=meta.producer_name,
        contract=contract,
        contract_error=error,
        metadata={k: v for k, v in custom.items() if k != METADATA_KEY},
    )


def _from_onnx(path: Path) -> ModelInfo:
    import onnx
    from onnx import helper

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # DecodeError and friends for corrupt or foreign files
        raise ModelLoadError(f"{path}: not a readable ONNX model ({type(e).__name__})") from e
    graph = model.graph
    inits = {i.name for i in graph.initializer}

    def tensor(vi: Any) -> TensorInfo:
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
        return TensorInfo(
            vi.name, helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "?", dims
        )

    ops = Counter(n.op_type for n in graph.node)
    params = sum(int(_numel(i.dims)) for i in graph.initializer)
    meta = {p.key: p.value for p in model.metadata_props}
    contract, error = _contract(meta)
    return ModelInfo(
        path=str(path),
        size_bytes=path.stat().st_size,
        source="onnx",
        inputs=[tensor(i) for i in graph.input if i.name not in inits],
        outputs=[tensor(o) for o in graph.output],
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        contract=contract,
        contract_error=error,
        opset=next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
        ir_version=model.ir_version,
        parameters=params,
        op_counts=dict(ops.most_common()),
        quantized=any(
            op in ops for op in ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger")
        ),
        metadata={k: v for k, v in meta.items() if k != METADATA_KEY},
    )


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def model_info(path: str | os.PathLike[str], use_onnx: bool | None = None) -> ModelInfo:
    """Describe ``path``; ``use_onnx=None`` reads the graph when ``onnx`` is importable, else the session."""
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"{p}: no such model file")
    if use_onnx is None:
        try:
            import onnx  # noqa: F401
        except ImportError:
            use_onnx = False
        else:
            use_onnx = True
    if use_onnx:
        info = _from_onnx(p)
        _from_session(p)  # a graph onnx can parse may still not load in onnxruntime: say so here
    else:
        info = _from_session(p)
    if info.contract is not None:
        # All of them, in full, every time: info is where the one-line notices of the other commands point.
        notices = int8_notices(info.contract.get("provenance", {}))
        info.int8_warnings = [n.detail for n in notices]
        already = told(p)
        info.notices_told = {n.kind: already.get(n.kind, "not shown") for n in notices}
    return info


@dataclass
class InfoReport:
    """``edgecls info``'s answer: the model, the engine per provider here, the engine a session ran (or None)."""

    model: ModelInfo
    providers_here: list[str]  # which engine each --provider uses on this machine (OpenVINO: EP or runtime)
    engine: dict[str, Any] | None = None  # engine, providers used, precision read back, one-line summary

    def to_dict(self) -> dict[str, Any]:
        return {**self.model.to_dict(), "providers_here": self.providers_here, "engine": self.engine}


def describe(options: InfoOptions) -> InfoReport:
    """Describe ``options.model``; with a provider or precision, also load it on a real session and report the
    engine (not tried when the contract is unreadable: the caller reports that refusal instead)."""
    from edgecls.runtime.providers.catalog import provider_paths

    info = model_info(options.model)
    if options.acknowledge and info.notices_told:
        remember(options.model, info.notices_told, ACKNOWLEDGED)  # EdgeclsError (one line) when it cannot
        info.notices_told = dict.fromkeys(info.notices_told, ACKNOWLEDGED)
    providers_here = provider_paths()
    wants_engine = (options.provider or options.precision) and not info.contract_error
    engine = engine_on(options.model, options.provider, options.precision) if wants_engine else None
    return InfoReport(info, providers_here, engine)


def engine_on(model: Path, provider: str | None, precision: Precision | None) -> dict[str, Any]:
    """What runs ``model`` with ``--provider``/``--precision``: the engine, providers used and the precision read
    back from the compiled model (OpenVINO), from a real session."""
    from edgecls.runtime.providers.session import create_session

    _, session = create_session(model, provider=provider or "auto", threads=1, precision=precision)
    return {
        "engine": session.engine,
        "used": session.used,
        "precision": session.precision,
        "line": session.engine_line(),
    }
