"""onnxruntime sessions: provider selection, session options and honest fallback reporting (provider names and
options are names.py's job, plugin EP registration plugins.py's).

``create_session`` is the only place edgecls builds an ``InferenceSession`` (the Classifier, eval, bench and
parity checks all come through here), so provider handling is consistent everywhere.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecls.runtime.errors import ModelLoadError, ProviderError
from edgecls.runtime.providers.engine_errors import short_engine_message
from edgecls.runtime.providers.names import AUTO_PREFERENCE, default_provider_options, resolve_provider_name
from edgecls.runtime.providers.plugins import plugin_provider_names
from edgecls.runtime.providers.precision import DEFAULT_PRECISION, Precision
from edgecls.runtime.providers.training_artifacts import export_first_hint

if TYPE_CHECKING:
    import onnxruntime as ort

# onnxruntime is imported by the functions that use it, not here: ``--provider openvino`` on OpenVINO's own
# runtime never needs it, and its import is a tenth of a second of that path's cold start.


@dataclass
class SessionInfo:
    """What was asked for and what onnxruntime actually used (``sess.get_providers()``)."""

    requested: list[str]
    used: list[str]
    fallback: bool  # an accelerator was requested but the session runs on CPU only (or runs no node)
    warnings: list[str] = field(default_factory=list)
    node_placement: dict[str, int] | None = None  # provider -> nodes it runs, when onnxruntime reports it
    engine: str = "onnxruntime"  # or "openvino <version>" when OpenVINO's runtime runs the model itself
    # The precision the engine computes in, read back from it: OpenVINO's compiled INFERENCE_PRECISION_HINT
    # (f32/bf16/f16); None for onnxruntime, which runs each tensor in the type the file stores.
    precision: str | None = None

    def engine_line(self) -> str:
        """``openvino 2026.4.1 on CPU, precision f32``: what runs the model, for banners and reports."""
        used = ", ".join(self.used)
        return f"{self.engine} on {used}" + (f", precision {self.precision}" if self.precision else "")


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def select_providers(provider: str = "auto") -> list[str]:
    """Provider list for a session: the requested one, then CPU as the fallback of last resort.

    A provider that only a plugin library brings (registered by :func:`register_plugin_eps`) is listed too;
    :func:`create_session` attaches it through its ``OrtEpDevice`` entries.
    """
    available = available_providers()
    if provider != "auto":
        full = resolve_provider_name(provider)
        if full not in available and full in plugin_provider_names():
            return [full, "CPUExecutionProvider"]
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


def auto_provider() -> str:
    """The provider ``--provider auto`` runs a model on here, in every command (bench measures this one)."""
    return select_providers("auto")[0]


def session_options(
    threads: int | None = None, strict: bool = False, spin: bool = True, record_placement: bool = False
) -> ort.SessionOptions:
    import onnxruntime as ort

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
    if record_placement:
        # Which EP runs each node: get_providers() lists an accelerator even when it took no node, so a
        # fallback to CPU is only visible here (get_provider_graph_assignment_info()).
        so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    # Fatal only: load errors come back as exceptions that edgecls reports as one line naming the file.
    so.log_severity_level = 4
    return so


def _attach_plugin_provider(so: ort.SessionOptions, provider: str, options: dict[str, Any]) -> None:
    """Add a plugin EP to ``so`` through its ``OrtEpDevice`` entries (plugin EPs have no name-based path)."""
    import onnxruntime as ort

    devices = [d for d in ort.get_ep_devices() if d.ep_name == provider]
    if not devices:
        raise ProviderError(f"execution provider {provider} is registered but lists no device here")
    so.add_provider_for_devices(devices, {k: str(v) for k, v in options.items()})


def graph_placement(sess: ort.InferenceSession) -> dict[str, int] | None:
    """Provider -> number of nodes it runs (``session.record_ep_graph_assignment_info=1`` sessions only).

    ``get_providers()`` lists every provider the session was given, even one that took no node; placement is
    the only place a provider that loads but runs nothing shows up. None when onnxruntime cannot tell.
    """
    try:
        assigned = sess.get_provider_graph_assignment_info()
    except Exception:  # noqa: BLE001 - absent API or option not enabled: placement is simply unknown
        return None
    counts: dict[str, int] = {}
    for sub in assigned:
        counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.get_nodes())
    return counts


def openvino_route() -> str:
    """How ``--provider openvino`` runs here: ``"onnxruntime"`` (its OpenVINO EP can run: a build that includes
    it, or a registered plugin that lists a device) or ``"openvino"`` (OpenVINO's runtime directly).

    Raises :class:`ProviderError` naming the pip command when neither exists.
    """
    full = "OpenVINOExecutionProvider"
    if _onnxruntime_may_run_openvino() and (full in available_providers() or full in plugin_provider_names()):
        return "onnxruntime"
    from edgecls.runtime.providers.openvino import PIP_HINT, openvino_version

    if openvino_version() is not None:
        return "openvino"
    raise ProviderError(
        "execution provider 'openvino' is not available: this onnxruntime build has no OpenVINO EP (a plugin EP "
        f"lists only Intel devices) and the openvino package is not installed; {PIP_HINT}"
    )


#: Distributions of onnxruntime built with its OpenVINO EP, and the module of the OpenVINO plugin EP.
_ORT_OPENVINO_DISTRIBUTIONS = ("onnxruntime-openvino",)
_OPENVINO_PLUGIN_MODULE = "onnxruntime_ep_openvino"


def _onnxruntime_may_run_openvino() -> bool:
    """Whether onnxruntime could have an OpenVINO EP here, answered without importing it when it is not loaded
    yet: only a build that includes the EP (``onnxruntime-openvino``) or the plugin package can."""
    if "onnxruntime" in sys.modules or importlib.util.find_spec(_OPENVINO_PLUGIN_MODULE) is not None:
        return True
    from importlib.metadata import PackageNotFoundError, version

    for dist in _ORT_OPENVINO_DISTRIBUTIONS:
        try:
            version(dist)
            return True
        except PackageNotFoundError:
            continue
    return False


def _model_name_and_path(model: str | os.PathLike[str] | bytes) -> tuple[str, str | bytes]:
    if isinstance(model, bytes):
        return "<bytes>", model
    path = Path(model)
    hint = export_first_hint(path)
    if hint is not None:  # the run folder or its .pt where the exported .onnx belongs
        raise ModelLoadError(hint)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    return str(model), str(path)


def load_error(message: str, cause: BaseException) -> ModelLoadError:
    """A :class:`ModelLoadError` whose line keeps the engine's cause; the full text rides along as ``detail``
    (printed by the CLI with ``--verbose``)."""
    err = ModelLoadError(message)
    err.detail = str(cause).strip()  # type: ignore[attr-defined]
    return err


def _create_openvino_session(
    model: str | bytes, name: str, threads: int | None, provider_options: dict[str, Any], precision: Precision | None
) -> tuple[Any, SessionInfo]:
    from edgecls.runtime.providers.openvino import OpenVINOSession

    try:
        sess = OpenVINOSession(model, threads, provider_options, precision or DEFAULT_PRECISION)
    except ProviderError:
        raise  # a precision this device lacks: already one plain line
    except Exception as e:  # openvino raises its own (private) exception types
        raise load_error(f"{name}: OpenVINO cannot load model ({short_engine_message(e)})", e) from e
    info = SessionInfo(
        requested=["OpenVINOExecutionProvider"], used=sess.get_providers(), fallback=False,
        engine=f"openvino {sess.version}", precision=sess.precision,
    )
    return sess, info


def _refuse_precision(precision: Precision | None, provider: str) -> None:
    """onnxruntime runs each tensor in the type the file stores: only f32 (a no-op) can be asked of it."""
    if precision is not None and precision != DEFAULT_PRECISION:
        raise ProviderError(
            f"--precision {precision} is an OpenVINO setting (--provider openvino); onnxruntime's {provider} runs "
            "the types the file stores (export --fp16 or --quantize for another precision)"
        )


def create_session(
    model: str | os.PathLike[str] | bytes,
    provider: str = "auto",
    threads: int | None = None,
    provider_options: dict[str, Any] | None = None,
    strict: bool = False,
    spin: bool = True,
    precision: Precision | str | None = None,
) -> tuple[ort.InferenceSession, SessionInfo]:
    """Create an InferenceSession and report which providers it really uses.

    A requested accelerator that silently ends up on CPU - not in ``get_providers()``, or listed there but
    running no node - is a warning, or a :class:`ProviderError` with ``strict=True`` (which also sets
    ``session.disable_cpu_ep_fallback`` so nodes cannot leak to the CPU).

    ``openvino`` runs through onnxruntime's OpenVINO EP where it can run here, otherwise through OpenVINO's own
    runtime (:mod:`edgecls.runtime.providers.openvino`, same session calls; ``SessionInfo.engine`` says which).
    ``precision`` (``--precision``): f32 (default), bf16 or f16 for OpenVINO; onnxruntime refuses anything but
    f32 (it runs the file's own types). ``provider_options`` go to the provider as given.
    """
    name, source = _model_name_and_path(model)
    precision = Precision.parse(precision) if precision is not None else None
    provider_options = dict(provider_options or {})
    if provider != "auto" and resolve_provider_name(provider) == "OpenVINOExecutionProvider":
        if openvino_route() == "openvino":
            return _create_openvino_session(source, name, threads, provider_options, precision)
    import onnxruntime as ort

    providers = select_providers(provider)
    _refuse_precision(precision, providers[0])
    primary = providers[0]
    on_cpu = primary == "CPUExecutionProvider"
    if strict and not on_cpu:
        providers = [primary]  # the CPU EP must not be listed when CPU fallback is disabled
    primary_options = {**default_provider_options(primary, threads=threads), **(provider_options or {})}
    so = session_options(threads, strict and not on_cpu, spin, record_placement=not on_cpu)
    kwargs: dict[str, Any] = {}
    if primary in available_providers():
        kwargs["providers"] = providers
        kwargs["provider_options"] = [primary_options if i == 0 else {} for i in range(len(providers))]
    else:
        _attach_plugin_provider(so, primary, primary_options)
    try:
        sess = ort.InferenceSession(source, sess_options=so, **kwargs)
    except Exception as e:  # onnxruntime raises several private exception types
        msg = short_engine_message(e)
        if "INVALID_PROTOBUF" in msg or "Protobuf parsing failed" in msg:
            msg = "not an ONNX model: protobuf parsing failed"
        if strict and "fallback to CPU EP has been explicitly disabled" in msg:
            # The provider loaded but cannot run (some of) the graph; strict mode forbids the CPU taking over.
            raise ProviderError(f"{name}: --strict: {primary} cannot run this model without CPU fallback") from e
        raise load_error(f"{name}: cannot load model ({msg})", e) from e
    used = list(sess.get_providers())
    placement = graph_placement(sess) if not on_cpu else None
    info = SessionInfo(requested=providers, used=used, fallback=False, node_placement=placement)
    if not on_cpu and primary not in used:
        info.fallback = True
        msg = f"{name}: requested {primary} but the session runs on {', '.join(used)} (silent CPU fallback)"
    elif placement is not None and not on_cpu and placement.get(primary, 0) == 0:
        info.fallback = True  # listed by get_providers() but runs no node: still a silent fallback
        msg = f"{name}: {primary} is listed by the session but runs no node; everything runs on CPU"
    if info.fallback:
        if strict:
            raise ProviderError(msg)
        info.warnings.append(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return sess, info
