"""OpenVINO's own runtime behind the session interface the Classifier and bench use (``--provider openvino``).

Why not onnxruntime's OpenVINO execution provider: on the machines edgecls is tested on (AMD x86 CPUs) it
cannot run with the pinned onnxruntime. The plugin EP (``onnxruntime-ep-openvino``) registers but lists no
device: its factory skips every hardware device whose PCI vendor id is not Intel's 0x8086
(``OpenVINOEpPluginFactory::GetSupportedDevices`` in onnxruntime/core/providers/openvino/ov_factory.cc), and an
AMD CPU reports 0x1022. ``onnxruntime-openvino`` does run on AMD, but it replaces the ``onnxruntime`` module with
an older build. So where onnxruntime's EP cannot run, :func:`edgecls.runtime.providers.session.create_session` opens the
same ``.onnx`` file with the ``openvino`` package (``pip install 'edgecls[openvino]'``) through this module.

:class:`OpenVINOSession` answers the calls edgecls makes on an ``onnxruntime.InferenceSession``
(``get_inputs``, ``get_outputs``, ``get_modelmeta().custom_metadata_map``, ``run``, ``get_providers``), so the
Classifier, ``eval`` and ``bench`` run it unchanged. The contract comes from the ONNX ``metadata_props``, which
OpenVINO's ONNX reader keeps in the model's runtime info under ``framework`` (no second read of the file).

Threads: ``--threads N`` becomes ``INFERENCE_NUM_THREADS``; ``PERFORMANCE_HINT`` is ``LATENCY`` (one inference
stream, as ``edgecls run`` calls the model one batch at a time); any OpenVINO CPU property can be passed as a
provider option (``--provider-option PERFORMANCE_HINT=THROUGHPUT``). ``device_type`` (onnxruntime's OpenVINO EP
option name) picks the OpenVINO device, ``CPU`` by default.

Precision: OpenVINO's CPU plugin runs an fp32 graph in bfloat16 by default wherever the CPU has bf16 (AVX-512
BF16 / AMX), which moved top-1 on 4.67% of 300 real photo crops against onnxruntime fp32 for EfficientNet-Lite0 on
an Intel Xeon with AMX. So ``INFERENCE_PRECISION_HINT`` is always set: ``f32`` unless ``--precision bf16|f16``
asks otherwise (refused where the device's ``OPTIMIZATION_CAPABILITIES`` lacks it), and the precision the
compiled model really uses is read back from it (:attr:`OpenVINOSession.precision`) for every report.

openvino is imported only when this path is used (:func:`import_openvino`, without its model-conversion tools);
the module itself imports nothing heavy.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.errors import ProviderError, install_hint
from edgecls.runtime.providers.precision import DEFAULT_PRECISION, Precision

#: What ``SessionInfo.used`` / ``get_providers()`` say for this path: the engine and its device, never an
#: onnxruntime provider name (nothing of onnxruntime runs the model here).
ENGINE_PREFIX = "OpenVINO"
PIP_HINT = install_hint("openvino")

# OpenVINO element type names -> the onnxruntime type strings the Classifier/bench check.
_TYPE_NAMES = {"f32": "tensor(float)", "f16": "tensor(float16)", "f64": "tensor(double)", "u8": "tensor(uint8)"}


def import_openvino() -> Any:
    """``import openvino``, minus ``openvino.tools.ovc`` (the model converter, which brings its telemetry and
    urllib/http): ``openvino/__init__.py`` imports it only to re-export ``convert_model`` and skips it on an
    ImportError. edgecls reads ONNX files directly and never converts, and the converter was ~70% of the import
    (0.12 -> 0.04 s of CPU on an Intel Xeon; benchmarks/results/cold_start_*). The block is lifted right after,
    so ``from openvino.tools.ovc import convert_model`` still works later in the same process."""
    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    blocked = "openvino.tools.ovc" not in sys.modules
    if blocked:
        sys.modules["openvino.tools.ovc"] = None  # type: ignore[assignment]  # makes its import raise ImportError
    try:
        import openvino
    finally:
        if blocked and sys.modules.get("openvino.tools.ovc", False) is None:
            del sys.modules["openvino.tools.ovc"]
    return openvino


def openvino_version() -> str | None:
    """The installed ``openvino`` package version, or None; does not import openvino."""
    if importlib.util.find_spec("openvino") is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openvino")
    except PackageNotFoundError:
        return "unknown"


def used_name(device: str) -> str:
    """``OpenVINO:CPU``: how this path appears in ``SessionInfo.used`` and bench rows."""
    return f"{ENGINE_PREFIX}:{device}"


def is_openvino_runtime(used: list[str] | tuple[str, ...]) -> bool:
    return bool(used) and used[0].startswith(ENGINE_PREFIX + ":")


@dataclass(frozen=True)
class PortInfo:
    """The fields of onnxruntime's ``NodeArg`` edgecls reads: name, ``tensor(float)``-style type, shape.

    ``shape`` holds ints for static dimensions and a name (``"batch"``) for dynamic ones, as onnxruntime does.
    """

    name: str
    type: str
    shape: list[Any]


@dataclass(frozen=True)
class ModelMeta:
    custom_metadata_map: dict[str, str] = field(default_factory=dict)


def _port_info(port: Any, dynamic_name: str) -> PortInfo:
    shape: list[Any] = []
    for i, dim in enumerate(port.get_partial_shape()):
        shape.append(dim.get_length() if dim.is_static else (dynamic_name if i == 0 else f"dim{i}"))
    return PortInfo(
        name=port.get_any_name(),
        type=_TYPE_NAMES.get(port.get_element_type().get_type_name(), str(port.get_element_type())),
        shape=shape,
    )


def _framework_metadata(model: Any) -> dict[str, str]:
    """ONNX ``metadata_props`` as OpenVINO's ONNX frontend keeps them: ``rt_info["framework"][key]``."""
    if not model.has_rt_info(["framework"]):
        return {}
    out: dict[str, str] = {}
    for key in model.get_rt_info(["framework"]).astype(dict):
        try:
            out[str(key)] = model.get_rt_info(["framework", key]).astype(str)
        except Exception:  # noqa: BLE001 - a non-string entry is not metadata edgecls reads
            continue
    return out


# precision -> the entry of the device's OPTIMIZATION_CAPABILITIES that says it has fast kernels for it.
_CAPABILITY = {Precision.f32: "FP32", Precision.bf16: "BF16", Precision.f16: "FP16"}
PRECISION_HINT = "INFERENCE_PRECISION_HINT"


def check_precision(precision: Precision | str, capabilities: list[str] | tuple[str, ...], device: str = "CPU") -> None:
    """Refuse a precision the device has no kernels for (``capabilities``: its ``OPTIMIZATION_CAPABILITIES``,
    e.g. ``['FP32', 'INT8', 'BIN', 'EXPORT_IMPORT']`` on an AVX2 CPU, ``BF16`` added where it has AMX/AVX512-BF16);
    OpenVINO would otherwise quietly run f32 (or emulate) and the report would name a precision not used."""
    needed = _CAPABILITY[Precision.parse(precision)]
    if needed not in capabilities:
        raise ProviderError(
            f"--precision {precision}: OpenVINO's {device} device here has no {needed} support "
            f"(OPTIMIZATION_CAPABILITIES: {', '.join(capabilities) or 'none'}); use --precision f32"
        )


def device_capabilities(core: Any, device: str) -> list[str]:
    """The device's ``OPTIMIZATION_CAPABILITIES`` (``FP32``, ``BF16``, ``FP16``, ``INT8``...), as OpenVINO reports."""
    try:
        return [str(c) for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except Exception:  # noqa: BLE001 - a device (or a plugin) without the property: nothing is known
        return []


def cpu_precisions() -> list[Precision]:
    """The precisions OpenVINO's CPU device has kernels for here (``f32``, plus ``bf16``/``f16`` where its
    ``OPTIMIZATION_CAPABILITIES`` lists them). Imports openvino."""
    caps = device_capabilities(import_openvino().Core(), "CPU")
    return [p for p, cap in _CAPABILITY.items() if cap in caps]


def default_cache_dir() -> str:
    """Where compiled models are cached (OpenVINO's ``CACHE_DIR``), like the TensorRT engine cache."""
    return os.path.join(os.path.expanduser("~"), ".cache", "edgecls", "openvino")


def compile_properties(
    threads: int | None, options: dict[str, Any], precision: Precision | str = DEFAULT_PRECISION
) -> tuple[str, dict[str, Any]]:
    """(OpenVINO device, properties for ``compile_model``) from ``--threads``, ``--precision`` and the provider
    options (a provider option ``INFERENCE_PRECISION_HINT=...`` wins over ``precision``).

    ``CACHE_DIR`` (OpenVINO's model cache) is on by default: a cache hit skips the graph transformations of
    compiling, which is most of a cold start for int8 files (0.50 -> 0.12 s of CPU for MobileNetV2 int8 here,
    0.15 -> 0.08 s fp32); ``--provider-option CACHE_DIR=`` turns it off.
    """
    props: dict[str, Any] = {
        "PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": default_cache_dir(),
        PRECISION_HINT: Precision.parse(precision).value,
    }
    if threads:
        props["INFERENCE_NUM_THREADS"] = int(threads)
    rest = dict(options)
    device = str(rest.pop("device_type", "CPU"))
    props.update({k: v for k, v in rest.items()})
    if not props["CACHE_DIR"]:
        del props["CACHE_DIR"]
    return device, props


#: Batch sizes compiled with a static shape per session; further sizes share one dynamic-batch compile.
STATIC_BATCHES = 4


class OpenVINOSession:
    """An ``.onnx`` model compiled by OpenVINO, with the session calls edgecls uses.

    Shapes: ``run([out], {input: float32[N, 3, h, w]})`` -> ``[float32[N, C]]`` (a copy: OpenVINO reuses its
    output buffer on the next call).

    Why one compile per batch size: OpenVINO's CPU plugin runs a static-shape compile faster than a dynamic one
    (its own guidance; 1.15x at batch 1 for MobileNetV2 in one in-process run on this busy box, 1.02x at batch
    8), so a dynamic-batch model is compiled for batch 1 at load (what ``edgecls run`` calls) and for each new
    batch size on first use, up to :data:`STATIC_BATCHES` sizes; after that one dynamic-batch compile serves
    the rest.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        threads: int | None,
        options: dict[str, Any],
        precision: Precision | str = DEFAULT_PRECISION,
    ) -> None:
        ov = import_openvino()
        self._core = ov.Core()
        self.device, self.properties = compile_properties(threads, options, precision)
        asked = str(self.properties[PRECISION_HINT])  # a provider option INFERENCE_PRECISION_HINT=... wins
        if asked in {p.value for p in Precision} and asked != DEFAULT_PRECISION.value:
            check_precision(Precision(asked), device_capabilities(self._core, self.device), self.device)
        source: Any = model if isinstance(model, bytes) else str(Path(model))
        self._model = self._core.read_model(source)
        # Ports as the file declares them (a dynamic batch stays dynamic for the Classifier's checks).
        self._inputs = [_port_info(p, "batch") for p in self._model.inputs]
        self._outputs = [_port_info(p, "batch") for p in self._model.outputs]
        self._meta = ModelMeta(_framework_metadata(self._model))
        self.version = ov.__version__.split("-")[0]  # "2026.4.1-22982-..." -> "2026.4.1"
        self._requests: dict[int | None, Any] = {}  # batch size (None: dynamic) -> infer request
        self._first = self._request_for(1 if self._batch_is_only_dynamic_dim() else None)
        #: The precision the compiled model runs in (``f32``/``bf16``/``f16``), read back from it, not assumed.
        self.precision = self.compiled_property(PRECISION_HINT).get_type_name()

    def _batch_is_only_dynamic_dim(self) -> bool:
        if len(self._model.inputs) != 1:
            return False
        dims = list(self._model.inputs[0].get_partial_shape())
        return bool(dims) and not dims[0].is_static and all(d.is_static for d in dims[1:])

    def _request_for(self, batch: int | None) -> Any:
        if batch is not None and not self._batch_is_only_dynamic_dim():
            batch = None  # static file, or more than the batch is dynamic: one compile as the file says
        if batch is not None and batch not in self._requests and len(self._requests) >= STATIC_BATCHES:
            batch = None
        if batch not in self._requests:
            model = self._model
            if batch is not None:
                model = self._model.clone()
                dims = [d.get_length() for d in list(model.inputs[0].get_partial_shape())[1:]]
                model.reshape([batch, *dims])
            compiled = self._core.compile_model(model, self.device, self.properties)
            self._requests[batch] = compiled.create_infer_request()
        return self._requests[batch]

    # --- the onnxruntime.InferenceSession calls edgecls makes ----------------------------------------------
    def get_inputs(self) -> list[PortInfo]:
        return list(self._inputs)

    def get_outputs(self) -> list[PortInfo]:
        return list(self._outputs)

    def get_modelmeta(self) -> ModelMeta:
        return self._meta

    def get_providers(self) -> list[str]:
        return [used_name(self.device)]

    def compiled_property(self, name: str) -> Any:
        """What OpenVINO really chose (``INFERENCE_NUM_THREADS``, ``PERFORMANCE_HINT``...), for reports."""
        return self._first.get_compiled_model().get_property(name)

    def run(self, output_names: list[str] | None, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        by_name = {p.name: i for i, p in enumerate(self._inputs)}
        inputs = {by_name.get(k, k): np.ascontiguousarray(v) for k, v in feed.items()}
        request = self._request_for(int(next(iter(inputs.values())).shape[0]))
        request.infer(inputs)
        names = output_names or [p.name for p in self._outputs]
        index = {p.name: i for i, p in enumerate(self._outputs)}
        return [np.array(request.get_output_tensor(index[n]).data, copy=True) for n in names]
