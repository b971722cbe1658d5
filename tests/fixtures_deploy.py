"""Fixtures of the deploy area: the local wheel caches, a throw-away gpg signing key, real packed bundles (signed),
and installing one with its own install.sh.

The wheel caches are made by tests/device/prepare_wheels.sh (`make device-root` runs it; it may reach PyPI, the
tests never do); without them the tests that pack with wheels skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("EDGECLS_DEVICE_CACHE", "/var/cache/edgecls"))
WHEEL_CACHE = CACHE / "wheels"


def wheel_cache(target: str, serve: bool = False) -> Path:
    """The cached wheels for ``target`` (linux-x86_64, linux-aarch64), Python 3.11; skip when absent."""
    path = WHEEL_CACHE / f"{target}-cp311"
    if not any(path.glob("onnxruntime-*.whl")):
        pytest.skip(f"no local wheel cache at {path}: run tests/device/prepare_wheels.sh once (make device-root)")
    if serve and not any(path.glob("starlette-*.whl")):
        pytest.skip(f"the wheel cache at {path} has no serve extra: run tests/device/prepare_wheels.sh again")
    return path


def device_env() -> dict[str, str]:
    """The environment install.sh runs with here: this interpreter as the device's python3, no venv leaking in."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "DISPLAY")}
    env["PYTHON"] = sys.executable
    return env


def run_install(bundle: Path, prefix: Path | str, timeout: float = 900, **env: str) -> subprocess.CompletedProcess[str]:
    """``sh BUNDLE/install.sh PREFIX`` as a user would run it, output captured."""
    return subprocess.run(["sh", str(bundle / "install.sh"), str(prefix)], capture_output=True, text=True,
                          env={**device_env(), **env}, timeout=timeout, cwd=bundle.parent)


@dataclass(frozen=True)
class SigningKey:
    home: Path  # GNUPGHOME holding the secret key (the packing machine)
    fingerprint: str
    keyring: Path  # `gpg --export` of the public key: what the device keeps in /etc/edgecls/keyring.gpg


@pytest.fixture(scope="session")
def signing_key() -> Iterator[SigningKey]:
    """A fresh ed25519 signing key in a private GNUPGHOME (short path: gpg-agent's socket), removed afterwards."""
    if shutil.which("gpg") is None or shutil.which("gpgv") is None:
        pytest.skip("gpg and gpgv are needed to sign and check bundles (Debian: apt install gnupg)")
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "edgecls test <test@example.invalid>",
                        "ed25519", "sign", "never"], env=env, check=True, capture_output=True, timeout=120)
        listing = subprocess.run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], env=env, check=True,
                                 capture_output=True, text=True).stdout
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        keyring = home / "device-keyring.gpg"
        with keyring.open("wb") as f:
            subprocess.run(["gpg", "--batch", "--export", fingerprint], env=env, check=True, stdout=f)
        yield SigningKey(home, fingerprint, keyring)
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def signed_x86_bundle(exported_tiny: Path, signing_key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`edgecls pack EXPORT --platform linux-x86_64 --service serve --sign KEY` from the local wheel cache (a library
    call): models, wheels, hashed requirements, SHA256SUMS and its signature. Tests copy it before changing it."""
    from edgecls.deploy.pack import PackOptions, pack
    from edgecls.runtime.device.manifest import ServiceKind

    if sys.version_info[:2] != (3, 11):
        pytest.skip("the wheel cache is for Python 3.11")
    cache = wheel_cache("linux-x86_64", serve=True)
    out = tmp_path_factory.mktemp("signed") / "bundle"
    old = os.environ.get("GNUPGHOME")
    os.environ["GNUPGHOME"] = str(signing_key.home)
    try:
        pack(PackOptions(models=(str(exported_tiny),), out=str(out), platform="linux-x86_64", find_links=(str(cache),),
                         no_index=True, tarball=False, service=ServiceKind.serve, sign=signing_key.fingerprint),
             log=lambda _m: None)
    finally:
        if old is None:
            os.environ.pop("GNUPGHOME")
        else:
            os.environ["GNUPGHOME"] = old
    return out


def copy_bundle(bundle: Path, dest: Path) -> Path:
    """A copy of ``bundle`` to tamper with (the original stays as packed)."""
    shutil.copytree(bundle, dest, symlinks=True)
    return dest


def scale_weights(model: Path, fraction: float = 0.3, factor: float = 1.6) -> None:
    """``fraction`` of the largest float layer's weights x ``factor``: a wrong or corrupted fp32 file that is still
    a valid model (30% x1.6 fails fp32's selftest bound but passes int8's)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(model))
    init = max((t for t in m.graph.initializer if t.data_type == onnx.TensorProto.FLOAT),
               key=lambda t: int(np.prod(t.dims)))
    w = numpy_helper.to_array(init).copy()
    w.flat[: int(w.size * fraction)] *= factor
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(m, str(model))


def claim_variant(model: Path, variant: str) -> None:
    """Rewrite the model's contract to say ``variant`` (what a tampered file's metadata can claim)."""
    import json

    import onnx

    from edgecls.runtime.contract.model_contract import METADATA_KEY

    m = onnx.load(str(model))
    (entry,) = [p for p in m.metadata_props if p.key == METADATA_KEY]
    contract = json.loads(entry.value)
    contract["provenance"]["variant"] = variant
    entry.value = json.dumps(contract)
    onnx.save(m, str(model))
