"""What can run a model on this machine: execution providers, their devices, and which engine each
``--provider`` name uses (``edgecls providers``, ``edgecls info``).

Kept apart from :mod:`edgecls.runtime.providers.session`, which builds sessions: this module only describes, for people.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnxruntime as ort

from edgecls.runtime.errors import ProviderError
from edgecls.runtime.providers.names import AUTO_PREFERENCE, PROVIDER_ALIASES
from edgecls.runtime.providers.plugins import register_plugin_eps
from edgecls.runtime.providers.session import available_providers, openvino_route


@dataclass
class DeviceInfo:
    """One ``OrtEpDevice``: a provider paired with a hardware device it can run on."""

    provider: str
    vendor: str
    device_type: str
    device_vendor: str
    device_id: int
    metadata: dict[str, str]


def ep_devices() -> list[DeviceInfo]:
    """Every (provider, device) pair onnxruntime reports, plugin providers included."""
    if not hasattr(ort, "get_ep_devices"):
        return []
    register_plugin_eps()
    return [
        DeviceInfo(
            provider=d.ep_name, vendor=d.ep_vendor, device_type=str(d.device.type).rsplit(".", 1)[-1],
            device_vendor=d.device.vendor, device_id=int(d.device.device_id),
            metadata={**dict(d.device.metadata), **dict(d.ep_metadata)},
        )
        for d in ort.get_ep_devices()
    ]


@dataclass
class ProviderRow:
    """A line of ``edgecls providers``."""

    provider: str
    short_names: list[str]
    available: bool
    source: str  # "built-in", "plugin <module>", or "not in this build"
    devices: list[str]
    auto_rank: int | None  # position in the ``auto`` preference order, None if never chosen by auto


def describe_providers() -> list[ProviderRow]:
    """What this machine has: every known provider, whether it is usable here, and its devices."""
    available = available_providers()
    plugins = {p.provider: p for p in register_plugin_eps()}
    devices = ep_devices()
    names = list(dict.fromkeys([*available, *plugins, *PROVIDER_ALIASES.values()]))
    rows: list[ProviderRow] = []
    for name in names:
        devs = [f"{d.device_type} {d.device_vendor} (id {d.device_id})" for d in devices
                if d.provider == name]
        if name in plugins:
            source = f"plugin {plugins[name].module}" + (f" (error: {plugins[name].error})"
                                                         if plugins[name].error else "")
        else:
            source = "built-in" if name in available else "not in this build"
        rows.append(ProviderRow(
            provider=name,
            short_names=sorted(k for k, v in PROVIDER_ALIASES.items() if v == name),
            available=name in available or bool(devs and name in plugins),
            source=source,
            devices=devs,
            auto_rank=AUTO_PREFERENCE.index(name) if name in AUTO_PREFERENCE else None,
        ))
    _describe_openvino_runtime(rows)
    rows.sort(key=lambda r: (not r.available, r.provider))
    return rows


def _describe_openvino_runtime(rows: list[ProviderRow]) -> None:
    """Where onnxruntime cannot run OpenVINO, ``--provider openvino`` uses OpenVINO's runtime: say so in its row."""
    row = next((r for r in rows if r.provider == "OpenVINOExecutionProvider"), None)
    if row is None or row.available:
        return
    from edgecls.runtime.providers.openvino import PIP_HINT, import_openvino, openvino_version

    version = openvino_version()
    if version is None:
        row.source += f"; OpenVINO runtime not installed ({PIP_HINT})"
        return
    core = import_openvino().Core()
    row.available = True
    row.devices = [f"{d} {core.get_property(d, 'FULL_DEVICE_NAME')} (OpenVINO)" for d in core.available_devices]
    row.source = f"openvino {version} runtime, used directly (onnxruntime's OpenVINO EP cannot run here)"
    row.auto_rank = None  # `--provider auto` picks among onnxruntime's providers; `bench --provider auto` measures it


#: Providers listed by onnxruntime that do not execute a local model's nodes (remote inference).
NON_COMPUTE_PROVIDERS = frozenset({"AzureExecutionProvider"})


def local_providers() -> list[str]:
    """Every provider that can run a model here: onnxruntime's compute providers, plus ``openvino`` when
    onnxruntime has no OpenVINO EP but OpenVINO's runtime is installed (the path ``--provider openvino`` takes)."""
    names = [a for a in available_providers() if a not in NON_COMPUTE_PROVIDERS]
    try:
        if openvino_route() == "openvino":
            names.append("openvino")
    except ProviderError:
        pass
    return names


def provider_paths() -> list[str]:
    """How each provider that can run here runs a model (``edgecls info``): onnxruntime's provider, or for
    ``openvino`` OpenVINO's runtime used directly. Cheap: imports no engine besides onnxruntime."""
    from edgecls.runtime.providers.openvino import openvino_version

    def path(p: str) -> str:
        if p == "openvino":
            return (
                f"openvino: OpenVINO {openvino_version()} runtime, used directly "
                "(onnxruntime's OpenVINO EP cannot run here)"
            )
        short = "/".join(sorted(k for k, v in PROVIDER_ALIASES.items() if v == p)) or p
        return f"{short}: onnxruntime {ort.__version__} {p}"

    return [path(p) for p in local_providers()]
