"""The built wheel holds the whole package: every subpackage, module and data file, importable from an install.

pyproject.toml lists its packages explicitly (export/ and runtime/ are mapped into ``edgecls`` by package-dir),
so a new subpackage that is not added to that list is silently left out of the wheel while every other test,
running on the editable install, still passes. This test builds the wheel from a copy of the sources, installs
it into a fresh venv without the editable hook and imports every module from there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Source folder -> the package it becomes (pyproject's [tool.setuptools.package-dir]).
PACKAGE_ROOTS = {"edgecls": "edgecls", "export": "edgecls.export", "runtime": "edgecls.runtime"}

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
import edgecls
found, failed = {}, {}
for info in pkgutil.walk_packages(edgecls.__path__, "edgecls."):
    try:
        found[info.name] = importlib.import_module(info.name).__file__
    except Exception as e:  # reported by name: the test shows which module and why
        failed[info.name] = f"{type(e).__name__}: {e}"
found["edgecls"] = edgecls.__file__
print(json.dumps({"found": found, "failed": failed}))
"""


def _source_files() -> dict[str, Path]:
    """Wheel path (edgecls/...) -> source file, for every file setuptools should ship (no caches)."""
    files: dict[str, Path] = {}
    for folder, package in PACKAGE_ROOTS.items():
        root = REPO / folder
        for path in root.rglob("*"):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            rel = path.relative_to(root)
            files["/".join([*package.split("."), *rel.parts])] = path
    return files


def _subpackages(names: set[str]) -> set[str]:
    return {name.rsplit("/", 1)[0].replace("/", ".") for name in names if name.endswith("/__init__.py")}


def _copy_sources(dest: Path) -> None:
    """The files a wheel is built from, outside the checkout (an in-tree build would leave build/ behind)."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for folder in PACKAGE_ROOTS:
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


@pytest.mark.slow
def test_wheel_ships_every_subpackage_and_imports_without_the_checkout(tmp_path: Path) -> None:
    src, dist, venv = tmp_path / "src", tmp_path / "dist", tmp_path / "venv"
    src.mkdir()
    _copy_sources(src)
    pip = [sys.executable, "-m", "pip"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", str(src), "-w", str(dist)],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("edgecls-*.whl")

    # 1. The wheel's contents against the source tree: a subpackage missing from pyproject's list fails here.
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _source_files()
    assert _subpackages(names) == _subpackages(set(expected)), "pyproject.toml's packages list is out of date"
    missing = sorted(set(expected) - names)
    assert not missing, f"files of the source tree missing from the wheel (packages / package-data): {missing}"

    # 2. Installed into a fresh venv without the editable hook, every module imports from the venv.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=300)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    # The dependencies (numpy, onnxruntime, cv2, typer, rich, torch, ...) come from this interpreter's
    # site-packages on PYTHONPATH: a PYTHONPATH entry's .pth files are not run, so the editable install's hook
    # stays off. The working directory is not the checkout, so its edgecls/ folder cannot be imported either.
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"], "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    ran = subprocess.run([str(python), "-c", _IMPORT_ALL], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}, report["failed"]
    modules = {name[: -len("/__init__.py")] if name.endswith("/__init__.py") else name[: -len(".py")]
               for name in expected if name.endswith(".py")}  # fmt: skip
    assert set(report["found"]) == {m.replace("/", ".") for m in modules}
    site = venv.resolve()
    outside = {m: f for m, f in report["found"].items() if not Path(f).resolve().is_relative_to(site)}
    assert not outside, f"imported from outside the installed wheel: {outside}"
