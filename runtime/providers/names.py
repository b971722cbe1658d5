"""Execution provider names and options: short names users type, the order ``auto`` prefers, each provider's
default options under onnxruntime's documented option names, and ``KEY=VALUE`` options from the command line.

Pure data and parsing: nothing here creates a session (runtime/providers/session.py does).
"""

from __future__ import annotations

import os
from typing import Any

from edgecls.runtime.errors import ProviderError

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


def default_provider_options(
    provider: str, device_id: int = 0, cache_dir: str | None = None, threads: int | None = None
) -> dict[str, Any]:
    """Options that matter for each provider, under onnxruntime's documented option names.

    tests/test_provider_truth.py checks every key against the names each provider documents.
    """
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
        # The EP runs its own thread pool: intra_op_num_threads does not reach it, num_of_threads does.
        return {"device_type": "CPU", **({"num_of_threads": int(threads)} if threads else {})}
    if provider == "ROCMExecutionProvider" or provider == "MIGraphXExecutionProvider":
        return {"device_id": device_id}
    if provider == "DmlExecutionProvider":
        return {"device_id": device_id}
    return {}


def _coerce(value: str) -> Any:
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def parse_provider_options(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["device_id=1", "trt_fp16_enable=false"]`` -> ``{"device_id": 1, "trt_fp16_enable": False}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ProviderError(f"provider option {item!r} is not KEY=VALUE")
        out[key.strip()] = _coerce(value.strip())
    return out
