"""``edgecls pack``: a real bundle for linux-x86_64 built from the local wheel cache (never downloaded here),
installed offline by its own install.sh into a fresh prefix (a release, a venv with the base install's headless
OpenCV and no X libraries) where its selftest passes; the one-line errors (no wheels for the platform, no golden
file)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from fixtures_deploy import device_env, run_install, wheel_cache
from fixtures_runtime import run_edgecls


def pack_args(*models: str | Path, platform: str, out: Path, cache: Path) -> list[str]:
    return ["pack", *map(str, models), "--platform", platform, "--out", str(out), "--no-index", "--find-links",
            str(cache)]


@pytest.mark.slow
def test_x86_64_pack_installs_offline_headless_and_passes_its_selftest(exported_tiny: Path, tmp_path: Path):
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the wheel cache is for Python 3.11")
    cache = wheel_cache("linux-x86_64")
    out = tmp_path / "bundle"
    r = run_edgecls(*pack_args(exported_tiny, platform="linux-x86_64", out=out, cache=cache), "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert sorted(result["models"]) == ["model.fp16.onnx", "model.int8.onnx", "model.onnx"]
    names = {p.name for p in (out / "wheelhouse").glob("*.whl")}
    assert any(n.startswith("edgecls-0.1.0-") for n in names) and any(n.startswith("onnxruntime-") for n in names)
    assert any(n.startswith("opencv_python_headless-") for n in names)
    assert not any(n.startswith("opencv_python-") for n in names) and not any(n.startswith("torch-") for n in names)
    for f in ("install.sh", "README.md", "manifest.json", "SHA256SUMS", "requirements.txt", "models/model.golden.npz"):
        assert (out / f).is_file(), f
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"] == "linux-x86_64" and manifest["python"] == "3.11"
    assert "models/model.int8.onnx" in manifest["files"] and "install.sh" in manifest["files"]
    assert manifest["service"] == {"kind": "run", "model": "model.int8.onnx", "camera": None, "port": 8000}
    # Every wheel pinned and hashed, nothing else: what pip's --require-hashes mode needs.
    req = [ln for ln in (out / "requirements.txt").read_text().splitlines() if not ln.startswith("#")]
    assert len(req) == len(result["wheels"]) and all("==" in ln and " --hash=sha256:" in ln for ln in req)
    with tarfile.open(result["tarball"]) as tar:
        assert "bundle/install.sh" in tar.getnames()
    assert result["fingerprint"] and len(result["fingerprint"]) == 64

    prefix = tmp_path / "device"
    env = device_env()
    install = run_install(out, prefix)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "every file matches SHA256SUMS" in install.stdout
    assert "passed: 3 of 3 models match their golden outputs" in install.stderr  # checked before it is used
    unit = (prefix / "edgecls.service").read_text()  # no systemd here: the unit is written into the prefix
    assert f'ExecStart="{prefix}/current/venv/bin/edgecls" run "{prefix}/current/models/model.int8.onnx"' in unit

    # The base install: exactly one cv2, the headless build, linked against no X library.
    py = str(prefix / "current" / "venv" / "bin" / "python")
    probe = subprocess.run(
        [py, "-c", "import cv2, importlib.util as u; print(cv2.__file__); "
         "print([m for m in ('torch', 'onnx') if u.find_spec(m)])"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    cv2_dir = Path(probe.stdout.splitlines()[0]).parent
    assert probe.stdout.splitlines()[1] == "[]"  # no torch, no onnx on the device
    (so,) = [p for p in cv2_dir.glob("cv2*.so")]
    ldd = subprocess.run(["ldd", str(so)], capture_output=True, text=True).stdout
    assert "libxcb" not in ldd and "libX11" not in ldd and "libGL" not in ldd, ldd
    # (the venv may have no pip of its own: install.sh installs with the system's pip when it can)
    dists = subprocess.run(
        [py, "-c", "import importlib.metadata as m, json; "
         "print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    installed = {name.lower() for name in json.loads(dists.stdout)}
    assert "opencv-python-headless" in installed and "opencv-python" not in installed
    show = subprocess.run([str(prefix / "current/venv/bin/edgecls"), "run", str(prefix / "current/models/model.onnx"),
                           str(out / "README.md"), "--show"], capture_output=True, text=True,
                          env={**env, "DISPLAY": ":99"}, timeout=120)
    assert show.returncode == 2 and "pip install 'edgecls[gui]'" in show.stderr and "Traceback" not in show.stderr


@pytest.mark.slow  # pack subprocesses: 23 s at load 5-13
def test_a_platform_without_wheels_is_one_line_naming_the_packages(exported_tiny: Path, tmp_path: Path):
    cache = wheel_cache("linux-aarch64")  # aarch64 wheels only: nothing of them installs on 32-bit ARM
    r = run_edgecls(*pack_args(exported_tiny / "model.onnx", platform="linux-armv7l", out=tmp_path / "b", cache=cache),
                    timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert "linux-armv7l" in line and "onnxruntime" in line and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()  # nothing half-written


def test_pack_refuses_a_model_without_golden_file_and_an_unknown_platform(exported_tiny: Path, tmp_path: Path):
    lone = tmp_path / "lone.onnx"
    lone.write_bytes((exported_tiny / "model.onnx").read_bytes())
    r = run_edgecls("pack", str(lone), "--platform", "linux-x86_64", "--out", str(tmp_path / "b"), "--no-index")
    assert r.returncode == 2 and "no golden file" in r.stderr and "Traceback" not in r.stderr
    r = run_edgecls("pack", str(lone), "--platform", "windows-arm64", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "'windows-arm64' is not one of" in r.stderr and "'linux-aarch64'" in r.stderr


def test_show_on_the_headless_base_install_asks_for_the_gui_extra(exported_tiny: Path):
    from edgecls.runtime.run.image_sinks import opencv_gui_backend

    assert opencv_gui_backend("  GUI:     NONE\n") == "NONE" and opencv_gui_backend("  GUI:   QT5\n") == "QT5"
    if opencv_gui_backend() != "NONE":
        pytest.skip("this venv has a GUI OpenCV (edgecls[gui]); the base install is headless")
    env = {**os.environ, "DISPLAY": ":99"}
    r = subprocess.run([sys.executable, "-m", "edgecls", "run", str(exported_tiny / "model.onnx"),
                        str(exported_tiny / "model.onnx"), "--show"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "headless build" in r.stderr and "pip install 'edgecls[gui]'" in r.stderr


@pytest.mark.slow
def test_system_site_packages_makes_a_venv_that_sees_the_system_but_uses_its_own_wheels(exported_tiny: Path,
                                                                                         tmp_path: Path):
    """`pack --system-site-packages` (a Pi's Debian python3-picamera2 visible in the venv): the venv includes the
    interpreter's site-packages, and every wheel of the bundle is still installed in the venv and imported from
    there (pip --ignore-installed), not taken from the system."""
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the wheel cache is for Python 3.11")
    cache = wheel_cache("linux-x86_64")
    out = tmp_path / "bundle"
    r = run_edgecls(*pack_args(exported_tiny / "model.onnx", platform="linux-x86_64", out=out, cache=cache),
                    "--system-site-packages", "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "manifest.json").read_text())["system_site_packages"] is True
    prefix = tmp_path / "device"
    install = run_install(out, prefix, SKIP_SELFTEST="1")
    assert install.returncode == 0, install.stdout + install.stderr
    venv = (prefix / "current" / "venv").resolve()
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    probe = subprocess.run([str(venv / "bin/python"), "-c", "import numpy, onnxruntime, sys; "
                            "print(numpy.__file__); print(onnxruntime.__file__); print(sys.path)"],
                           capture_output=True, text=True, env=device_env(), timeout=120)
    numpy_file, ort_file, path = probe.stdout.splitlines()
    assert numpy_file.startswith(str(venv)) and ort_file.startswith(str(venv)), probe.stdout
    assert any("site-packages" in p and not p.startswith(str(venv)) for p in ast.literal_eval(path))  # the system's
