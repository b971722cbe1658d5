"""Plugin execution providers: onnxruntime EP libraries shipped by Python packages, registered once when installed.

A package that fails to register is reported, never raised, so one broken plugin does not stop the CPU path.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Python packages that ship a plugin EP library: module name -> provider name it registers. Each exposes
#: ``get_library_path()`` (the onnxruntime packaging guidance); registration happens only when installed.
PLUGIN_EP_PACKAGES: dict[str, str] = {
    "onnxruntime_ep_openvino": "OpenVINOExecutionProvider",
}
_registered: dict[str, str] = {}  # module -> registration name, so each library is registered once


@dataclass
class PluginEP:
    module: str
    provider: str
    library: str
    error: str | None = None


def register_plugin_eps() -> list[PluginEP]:
    """Register the plugin EP library of every installed package in :data:`PLUGIN_EP_PACKAGES`.

    Uses ``ort.register_execution_provider_library`` (onnxruntime >= 1.22); a package that fails to register
    is reported in the result, not raised, so one broken plugin does not stop the CPU path.
    """
    import importlib
    import importlib.util

    import onnxruntime as ort

    found: list[PluginEP] = []
    if not hasattr(ort, "register_execution_provider_library"):
        return found
    for module, provider in PLUGIN_EP_PACKAGES.items():
        if importlib.util.find_spec(module) is None:
            continue
        entry = PluginEP(module=module, provider=provider, library="")
        try:
            mod = importlib.import_module(module)
            entry.library = str(mod.get_library_path())
            if hasattr(mod, "get_ep_name"):
                entry.provider = str(mod.get_ep_name())
            if module not in _registered:
                ort.register_execution_provider_library(module, entry.library)
                _registered[module] = module
        except Exception as e:  # a broken plugin must not take the runtime down
            entry.error = f"{type(e).__name__}: {e}".splitlines()[0]
        found.append(entry)
    return found


def plugin_provider_names() -> set[str]:
    """Providers that registered plugin libraries offer devices for (registers installed plugins first)."""
    import onnxruntime as ort

    if not hasattr(ort, "get_ep_devices"):
        return set()
    plugins = register_plugin_eps()
    if not plugins:
        return set()
    return {d.ep_name for d in ort.get_ep_devices()} - set(ort.get_available_providers())
