"""A wheelhouse for another machine: the edgecls wheel built here plus its dependencies downloaded by pip for the
device's platform and Python (``pip download --only-binary=:all: --platform ... --python-version ...``), so the
device installs with ``pip install --no-index --find-links`` and no network.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import edgecls
from edgecls.deploy.platforms import DeviceTarget
from edgecls.runtime.errors import EdgeclsError

# pip's resolver names the requirement it could not satisfy in its last lines:
#   "ERROR: No matching distribution found for onnxruntime==1.32.0"
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")


def checkout_root() -> Path | None:
    """The source checkout edgecls runs from (an editable install), or None for an installed wheel."""
    root = Path(edgecls.__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "runtime").is_dir() else None


def _pip(args: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise EdgeclsError(f"{what}: could not run pip ({e})") from e


def build_edgecls_wheel(dest: Path, wheel: Path | None = None) -> Path:
    """``wheel`` copied into ``dest``, or the checkout built into a wheel there (``pip wheel --no-deps``)."""
    dest.mkdir(parents=True, exist_ok=True)
    if wheel is not None:
        if not wheel.is_file() or wheel.suffix != ".whl":
            raise EdgeclsError(f"--edgecls-wheel {wheel}: not a wheel file")
        out = dest / wheel.name
        out.write_bytes(wheel.read_bytes())
        return out
    root = checkout_root()
    if root is None:
        raise EdgeclsError("edgecls is not running from a source checkout: give --edgecls-wheel FILE.whl")
    r = _pip(["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dest), str(root)], "edgecls wheel")
    found = sorted(dest.glob("edgecls-*.whl"))
    if r.returncode != 0 or not found:
        last = (r.stderr.strip().splitlines() or ["no wheel written"])[-1]
        raise EdgeclsError(f"could not build the edgecls wheel from {root}: {last}")
    return found[-1]


def wheel_requirements(wheel: Path, extras: Sequence[str] = ()) -> list[str]:
    """``name`` + version specifier of each ``Requires-Dist`` of a wheel that applies with ``extras`` (markers are
    evaluated here: the devices are Linux, like the machines that pack)."""
    from packaging.requirements import Requirement  # installed with onnxruntime, which requires it

    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = z.read(name).decode("utf-8", "replace")
    out = []
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
                out.append(f"{req.name}{req.specifier}")
    return out


def _pip_download_args(
    dest: Path, device: DeviceTarget, python_version: str, abi: str, constraints: Path | None,
    find_links: Sequence[Path], no_index: bool,
) -> list[str]:
    args = ["download", "-q", "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version,
            "--abi", abi, "--abi", "abi3", "--abi", "none", "-d", str(dest)]
    for platform_tag in device.pip_platforms:
        args += ["--platform", platform_tag]
    if constraints is not None:
        args += ["-c", str(constraints)]
    for link in find_links:
        args += ["--find-links", str(link)]
    if no_index:
        args.append("--no-index")
    return args


def download_wheels(
    requirements: Sequence[str],
    dest: Path,
    device: DeviceTarget,
    python_version: str,
    abi: str,
    constraints: Path | None = None,
    find_links: Sequence[Path] = (),
    no_index: bool = False,
    probe: Sequence[str] = (),
) -> list[Path]:
    """Binary wheels for ``requirements`` and their dependencies, for the device; one plain error naming the
    packages and platform when some have no wheel there (onnxruntime publishes none for 32-bit ARM). pip stops
    at the first one; each of ``probe`` (the direct dependencies) is then tried alone so all are named."""
    args = _pip_download_args(dest, device, python_version, abi, constraints, find_links, no_index)
    r = _pip([*args, *requirements], "wheelhouse")
    if r.returncode == 0:
        return sorted(dest.glob("*.whl"))
    # With constraints pip may only say ResolutionImpossible; probing each direct dependency names them all.
    missing = [req for req in probe if _pip([*args, "--no-deps", req], "wheelhouse").returncode != 0]
    missing = missing or [m.split(" (")[0] for m in _NO_MATCH.findall(r.stderr)][-1:]
    if not missing:
        last = (r.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise EdgeclsError(f"pip could not download the wheels for {device.name}: {last}")
    where = "in the given --find-links" if no_index else "on the package index"
    raise EdgeclsError(
        f"no wheel for {device.name} (Python {python_version}, {abi}) {where} of: {', '.join(missing)}; "
        "this device cannot install the edgecls runtime from wheels"
    )
