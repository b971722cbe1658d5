"""Session creation paths that can be exercised for real on a CPU-only machine: strict mode, provider options,
the OrtEpDevice path plugin EPs use, plugin registration failures, and the providers listing."""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
import pytest

from edgecls.runtime.errors import ProviderError
from edgecls.runtime.providers import catalog, names, plugins
from edgecls.runtime.providers import session as S


def test_strict_cpu_session_is_allowed(runtime_models):
    sess, info = S.create_session(runtime_models.cnn, provider="cpu", strict=True)
    assert info.used == ["CPUExecutionProvider"] and not info.fallback and info.warnings == []


def test_provider_options_parse_and_reach_the_session(runtime_models):
    opts = names.parse_provider_options(
        ["device_id=1", "trt_fp16_enable=false", "ratio=0.5", "device_type=GPU"]
    )
    assert opts == {"device_id": 1, "trt_fp16_enable": False, "ratio": 0.5, "device_type": "GPU"}
    with pytest.raises(ProviderError, match="KEY=VALUE"):
        names.parse_provider_options(["oops"])
    # A real CPU EP option (arena) accepted by onnxruntime through our path.
    options = {"arena_extend_strategy": 1}
    _, info = S.create_session(runtime_models.cnn, provider="cpu", provider_options=options)
    assert info.used == ["CPUExecutionProvider"]


def test_ep_device_path_used_by_plugin_providers(runtime_models):
    """Plugin EPs are attached with add_provider_for_devices; the CPU EP's device exercises that same call."""
    if not hasattr(ort, "get_ep_devices"):
        pytest.skip("onnxruntime < 1.22 has no OrtEpDevice API")
    so = S.session_options()
    S._attach_plugin_provider(so, "CPUExecutionProvider", {})
    sess = ort.InferenceSession(str(runtime_models.cnn), sess_options=so)
    assert sess.get_providers()[0] == "CPUExecutionProvider"
    y = sess.run(None, {"input": np.zeros((1, 3, 32, 32), np.float32)})[0]
    assert y.shape == (1, 3)
    with pytest.raises(ProviderError, match="lists no device"):
        S._attach_plugin_provider(S.session_options(), "NoSuchExecutionProvider", {})


def test_broken_plugin_package_is_reported_not_raised(tmp_path, monkeypatch):
    """An installed plugin package whose library cannot be registered shows up with its error."""
    pkg = tmp_path / "fake_ep_pkg.py"
    pkg.write_text(
        f"def get_library_path():\n    return {str(tmp_path / 'libnot_an_ep.so')!r}\n"
        "def get_ep_name():\n    return 'FakeExecutionProvider'\n"
    )
    (tmp_path / "libnot_an_ep.so").write_bytes(b"not a shared library")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(plugins.PLUGIN_EP_PACKAGES, "fake_ep_pkg", "FakeExecutionProvider")
    registered = {p.module: p for p in plugins.register_plugin_eps()}
    fake = registered["fake_ep_pkg"]
    assert fake.provider == "FakeExecutionProvider" and fake.error
    rows = {r.provider: r for r in catalog.describe_providers()}
    assert rows["FakeExecutionProvider"].source.startswith("plugin fake_ep_pkg (error:")
    assert not rows["FakeExecutionProvider"].available
    sys.modules.pop("fake_ep_pkg", None)


def test_describe_providers_and_devices():
    rows = catalog.describe_providers()
    cpu = next(r for r in rows if r.provider == "CPUExecutionProvider")
    assert cpu.available and cpu.short_names == ["cpu"] and cpu.devices
    assert rows[0].available  # available ones first
    assert any(d.provider == "CPUExecutionProvider" for d in catalog.ep_devices())
