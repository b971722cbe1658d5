"""The systemd unit and its settings file, written from Python: every character of the prefix reaches systemd as
data (checked with `systemd-analyze verify`, which parses the unit and checks that ExecStart's executable
exists), the settings file is mode 600 and keeps its token, and the unit is written once (your edits stay). The
same unit booted for real is tests/test_pack_service.py's (slow)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edgecls.runtime.device.manifest import CAMERA, ServiceEntry, ServiceKind, check_camera, read_manifest
from edgecls.runtime.device.service_setup import setup_service
from edgecls.runtime.device.unit import quote_exec_arg, read_settings, render_unit
from edgecls.runtime.errors import EdgeclsError

HOSTILE = "edge cls #&x#;1e touch FILE;# %h $HOME"


def test_exec_arguments_are_quoted_as_systemd_reads_them():
    assert quote_exec_arg("/opt/my dir/x") == '"/opt/my dir/x"'
    assert quote_exec_arg('a"b\\c') == '"a\\"b\\\\c"'
    assert quote_exec_arg("100%$HOME") == '"100%%$$HOME"'  # no specifier, no variable expansion
    for bad in ("a\nExecStartPre=/bin/sh", "a\rb", "a\x1bb"):
        with pytest.raises(EdgeclsError, match="control characters"):
            quote_exec_arg(bad)


def test_a_hostile_prefix_reaches_systemd_as_data(tmp_path: Path):
    """The unit for a prefix full of shell, sed and systemd syntax parses, and its ExecStart names an executable
    that exists (a real one: the release's venv is this test's venv)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is missing (Debian: the systemd package)")
    prefix = tmp_path / HOSTILE
    release = prefix / "releases/r1"
    (release / "models").mkdir(parents=True)
    (release / "venv").symlink_to(sys.prefix)
    (prefix / "current").symlink_to("releases/r1")
    service = ServiceEntry(ServiceKind.serve, "model.int8.onnx")
    result = setup_service(prefix, "edgecls", service)  # no systemd as init here: the unit goes into the prefix
    assert result.unit_path == prefix / "edgecls.service" and result.token
    unit = result.unit_path.read_text()
    assert "@PREFIX@" not in unit and unit.count("\nExecStart=") == 1
    r = subprocess.run([analyze, "verify", "--man=no", str(result.unit_path)], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    assert not any(tmp_path.rglob("FILE")) and not Path("FILE").exists()

    # A broken quote would show: the same check refuses an ExecStart whose path does not exist.
    missing = render_unit(tmp_path / "nowhere here", service, prefix / "edgecls.env")
    (tmp_path / "missing.service").write_text(missing)
    r = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / "missing.service")], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode != 0 and f"{tmp_path}/nowhere here/current/venv/bin/edgecls is not executable" in r.stderr


@pytest.mark.parametrize("char", ['"', "'", "\\", "\n"])
def test_a_prefix_systemd_cannot_run_a_program_from_is_refused(tmp_path: Path, char: str):
    with pytest.raises(EdgeclsError, match="quote or a backslash|control characters"):
        render_unit(tmp_path / f"a{char}b", ServiceEntry(ServiceKind.run, "m.onnx"), tmp_path / "e")


def test_settings_are_private_and_kept_and_the_unit_is_written_once(tmp_path: Path):
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    service = ServiceEntry(ServiceKind.serve, "model.int8.onnx", port=8123)
    first = setup_service(prefix, "edgecls", service)
    settings = prefix / "edgecls.env"
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    values = read_settings(settings)
    assert values["EDGECLS_TOKEN"] == first.token and len(first.token or "") >= 32
    assert values["EDGECLS_PORT"] == "8123" and values["EDGECLS_HOST"] == "0.0.0.0"
    edited = first.unit_path.read_text().replace("RestartSec=5", "RestartSec=9")
    first.unit_path.write_text(edited)
    again = setup_service(prefix, "edgecls", service)
    assert again.token is None and read_settings(settings)["EDGECLS_TOKEN"] == first.token
    assert first.unit_path.read_text() == edited and any("kept" in n for n in again.notes)
    assert os.stat(settings).st_mode & 0o077 == 0


def test_the_run_unit_does_not_restart_when_its_camera_is_missing():
    unit = render_unit(Path("/opt/edgecls"), ServiceEntry(ServiceKind.run, "m.onnx", camera=1), Path("/e"))
    assert '"/opt/edgecls/current/models/m.onnx" --camera 1 --json' in unit
    assert "RestartPreventExitStatus=1 2" in unit and "Restart=on-failure" in unit and "StartLimitBurst=5" in unit
    serve = render_unit(Path("/opt/edgecls"), ServiceEntry(ServiceKind.serve, "m.onnx"), Path("/e"))
    assert "RestartPreventExitStatus=2\n" in serve and "--port ${EDGECLS_PORT}" in serve and "User=edgecls" in serve


@pytest.mark.parametrize("name", ["a\nb.onnx", "a b.onnx", "../x.onnx", "x;y.onnx"])
def test_the_manifest_schema_refuses_model_names_outside_the_safe_set(tmp_path: Path, name: str):
    import json

    entry = {"path": f"models/{name}", "sha256": "0" * 64, "variant": "fp32", "golden": "models/g.npz",
             "golden_sha256": "0" * 64}
    (tmp_path / "manifest.json").write_text(json.dumps({
        "edgecls": "0.1.0", "bundle": "update", "target": "linux-x86_64", "python": "3.11",
        "models": {name: entry}, "files": {}}))
    with pytest.raises(EdgeclsError, match="not a manifest this edgecls reads"):
        read_manifest(tmp_path)


def test_a_pi_camera_module_is_the_run_unit_s_camera():
    """A Pi 5's camera module is a libcamera device, not /dev/videoN: the unit runs `run --camera pi:0`."""
    unit = render_unit(Path("/opt/edgecls"), ServiceEntry(ServiceKind.run, "m.onnx", camera="pi:0"), Path("/e"))
    assert '"/opt/edgecls/current/models/m.onnx" --camera pi:0 --json' in unit
    assert check_camera("/dev/video2") == "/dev/video2" and check_camera(3) == "3"


@pytest.mark.parametrize("camera", ["pi:0\nExecStartPre=/bin/touch /x", "0 --host 0.0.0.0", "rtsp://cam/",
                                    "pi:", "-1", "pi:0;x", "100"])
def test_a_camera_that_is_not_a_camera_spelling_is_refused_by_pack_and_by_the_manifest(tmp_path: Path, camera: str):
    import json

    with pytest.raises(EdgeclsError, match="expected N or /dev/videoN"):
        check_camera(camera)
    (tmp_path / "manifest.json").write_text(json.dumps({
        "edgecls": "0.1.0", "bundle": "update", "target": "linux-x86_64", "python": "3.11", "models": {},
        "files": {}, "service": {"kind": "run", "model": "m.onnx", "camera": camera}}))
    with pytest.raises(EdgeclsError, match="not a manifest this edgecls reads"):
        read_manifest(tmp_path)


def test_pack_refuses_a_bad_camera_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from fixtures_cli import cli_in_process

    code, _out, err = cli_in_process(["pack", str(tmp_path / "missing.onnx"), "--camera", "pi:0 --x",
                                      "--out", str(tmp_path / "b")], capsys)
    assert code == 2 and err.startswith("error: --camera 'pi:0 --x': expected N") and not (tmp_path / "b").exists()


def test_every_camera_the_manifest_accepts_is_one_run_accepts():
    """The manifest's camera pattern is its own (the device room does not import the sources'): it must never let
    through a value `edgecls run --camera` would refuse, or the unit would fail at every start."""
    from edgecls.runtime.sources.source_specs import is_camera_spelling

    tried = [f"{prefix}{n}" for prefix in ("", "pi:", "/dev/video", "cam:", "pi", "/dev/video-") for n in
             ("0", "7", "63", "99", "100", "", "x")]
    accepted = [c for c in tried if CAMERA.fullmatch(c)]
    assert accepted and all(is_camera_spelling(c) for c in accepted), accepted
