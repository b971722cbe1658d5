"""The local wheel cache the pack and arm64 tests install from (tests/device/prepare_wheels.sh fills it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Made by tests/device/prepare_wheels.sh (`make test` runs it; it may reach PyPI, the tests never do).
WHEEL_CACHE = Path(os.environ.get("EDGECLS_DEVICE_CACHE", "/var/cache/edgecls")) / "wheels"


def wheel_cache(target: str) -> Path:
    path = WHEEL_CACHE / f"{target}-cp311"
    if not any(path.glob("onnxruntime-*.whl")):
        pytest.skip(f"no local wheel cache at {path}: run tests/device/prepare_wheels.sh once (make test does)")
    return path
