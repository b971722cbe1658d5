"""onnxruntime sessions: provider selection by short name, provider options, and honest fallback reporting.

``create_session`` is the only place edgecls builds an ``InferenceSession`` (the Classifier, eval, bench and
parity checks all come through here), so provider handling is consistent everywhere.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgecls.runtime.errors import ModelLoadError, ProviderError

# Short names users type -> onnxruntime provider names.
PROVIDER_ALIASES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "dnnl": "DnnlExecutionProvider",
    "acl": "ACLExecutionProvider",
    "armnn": "ArmNNExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
    "webgpu": "WebGpuExecutionProvider",
    "vitisai": "VitisAIExecutionProvider",
    "cann": "CANNExecutionProvider",
}

# `auto` takes the first available of these; accelerators before the CPU.
AUTO_PREFERENCE: tuple[str, ...] = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "MIGraphXExecutionProvider",
    "ROCMExecutionProvider",
    "OpenVINOExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "QNNExecutionProvider",
    "CPUExecutionProvider",
)


def resolve_provider_name(name: str) -> str:
    """Map a short name (``cuda``) or a full name (``CUDAExecutionProvider``) to onnxruntime's name."""
    key = name.strip()
    if key.lower() in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[key.lower()]
    for full in PROVIDER_ALIASES.values():
        if key.lower() == full.lower():
            return full
    if key.endswith("ExecutionProvider"):
        return key  # an EP this table does not know yet (plugin EPs); availability decides
    raise ProviderError(
        f"unknown execution provider {name!r}; known short names: {', '.join(sorted(PROVIDER_ALIASES))}"
    )


def default_provider_options(provider: str, device_id: int = 0, cache_dir: str | None = None) -> dict[str, Any]:
    """Options that matter for each provider (documented onnxruntime option names)."""
    if provider == "CUDAExecutionProvider":
        return {"device_id": device_id, "cudnn_conv_algo_search": "HEURISTIC"}
    if provider == "TensorrtExecutionProvider":
        cache = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "edgecls", "trt")
        return {
            "device_id": device_id,
            "trt_fp16_enable": True,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True,
        }
    if provider == "OpenVINOExecutionProvider":
        return {"device_type": "CPU"}
    if provider == "ROCMExecutionProvider" or provider == "MIGraphXExecutionProvider":
        return {"device_id": device_id}
    if provider == "DmlExecutionProvider":
        return {"device_id": device_id}
    return {}


@dataclass
class SessionInfo:
    """What was asked for and what onnxruntime actually used (``sess.get_providers()``)."""

    requested: list[str]
    used: list[str]
    fallback: bool  # an accelerator was requested but the session runs on CPU only
    warnings: list[str] = field(default_factory=list)


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def select_providers(provider: str = "auto") -> list[str]:
    """Provider list for a session: the requested one, then CPU as the fallback of last resort."""
    available = available_providers()
    if provider == "auto":
        for p in AUTO_PREFERENCE:
            if p in available:
                return [p] if p == "CPUExecutionProvider" else [p, "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    full = resolve_provider_name(provider)
    if full not in available:
        raise ProviderError(
            f"execution provider {provider!r} ({full}) is not available in this onnxruntime build; "
            f"available: {', '.join(available)}"
        )
    return [full] if full == "CPUExecutionProvider" else [full, "CPUExecutionProvider"]


def session_options(threads: int | None = None, strict: bool = False, spin: bool = True) -> ort.SessionOptions:
    so = ort.SessionOptions()
    # Int8 QDQ kernels fuse only at EXTENDED or higher; ALL adds layout transforms that help conv nets.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # CNNs are chains; parallel mode only adds overhead
    if threads:
        so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if strict:
        so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    so.log_severity_level = 3  # errors only; edgecls reports what matters itself
    return so


def create_session(
    model: str | os.PathLike[str] | bytes,
    provider: str = "auto",
    threads: int | None = None,
    provider_options: dict[str, Any] | None = None,
    strict: bool = False,
    spin: bool = True,
) -> tuple[ort.InferenceSession, SessionInfo]:
    """Create an InferenceSession and report which providers it really uses.

    A requested accelerator that silently ends up on CPU is a warning, or a :class:`ProviderError` with
    ``strict=True``.
    """
    providers = select_providers(provider)
    options = [
        {**default_provider_options(p), **(provider_options or {})} if i == 0 else {}
        for i, p in enumerate(providers)
    ]
    name = "<bytes>" if isinstance(model, bytes) else str(model)
    if not isinstance(model, bytes):
        path = Path(model)
        if not path.is_file():
            raise ModelLoadError(f"{name}: no such model file")
        model = str(path)
    try:
        sess = ort.InferenceSession(
            model, sess_options=session_options(threads, strict, spin), providers=providers,
            provider_options=options,
        )
    except Exception as e:  # onnxruntime raises several private exception types
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, ProviderError):
            raise
        raise ModelLoadError(f"{name}: cannot load model ({msg})") from e
    used = list(sess.get_providers())
    fallback = providers[0] != "CPUExecutionProvider" and providers[0] not in used
    info = SessionInfo(requested=providers, used=used, fallback=fallback)
    if fallback:
        msg = f"{name}: requested {providers[0]} but the session runs on {', '.join(used)} (silent CPU fallback)"
        if strict:
            raise ProviderError(msg)
        info.warnings.append(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return sess, info
