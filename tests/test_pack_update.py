"""`edgecls update` without systemd: releases side by side, the `current` link, the selftest before the switch,
two releases kept, an interrupted update put back. Real models-only bundles (`pack --update`) and a real selftest
run by the release's own edgecls (the release's venv is this test's venv); the probe and rollback of a running
service are tests/test_pack_service.py's (systemd booted)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import onnx
import pytest
from fixtures_deploy import scale_weights
from fixtures_runtime import run_edgecls

from edgecls.runtime.device.manifest import ServiceEntry, ServiceKind
from edgecls.runtime.device.releases import Layout, mark_pending
from edgecls.runtime.device.service_setup import setup_service
from edgecls.runtime.device.update import UpdateOptions, UpdateRefused, apply_bundle

pytestmark = pytest.mark.slow  # each update runs a real selftest in a subprocess (about 3 s)


def models_bundle(exported_tiny: Path, out: Path, stamp: str, wrong: bool = False) -> Path:
    """`pack --update` of model.int8.onnx + its golden file; ``stamp`` makes new bytes with the same answers;
    ``wrong``: a fp32 file 30% x1.6 off under that name."""
    from edgecls.deploy.pack import PackOptions, pack

    src = out.with_name(out.name + "-src")
    src.mkdir(parents=True)
    shutil.copy2(exported_tiny / "model.golden.npz", src / "model.golden.npz")
    shutil.copy2(exported_tiny / ("model.onnx" if wrong else "model.int8.onnx"), src / "model.int8.onnx")
    if wrong:
        scale_weights(src / "model.int8.onnx")
    m = onnx.load(str(src / "model.int8.onnx"))
    m.doc_string = stamp
    onnx.save(m, str(src / "model.int8.onnx"))
    pack(PackOptions(models=(str(src / "model.int8.onnx"),), out=str(out), platform="linux-x86_64", update=True,
                     tarball=False), log=lambda _m: None)
    return out


@pytest.fixture
def prefix(exported_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed prefix laid out as install.sh leaves it: release r0 running through `current`, its venv
    link to a venv (this test's), the unit and settings of a run service."""
    monkeypatch.setenv("EDGECLS_KEYRING", str(tmp_path / "no-keyring.gpg"))
    first = models_bundle(exported_tiny, tmp_path / "b0", "release 0")
    prefix = tmp_path / "prefix"
    (prefix / "venvs").mkdir(parents=True)
    (prefix / "venvs/h0").symlink_to(sys.prefix)
    release = prefix / "releases/r0"
    shutil.copytree(first, release)
    (release / "venv").symlink_to("../../venvs/h0")
    (prefix / "current").symlink_to("releases/r0")
    setup_service(prefix, "edgecls", ServiceEntry(ServiceKind.run, "model.int8.onnx"))
    return prefix


def current_sha(prefix: Path) -> str:
    manifest = json.loads((prefix / "current/manifest.json").read_text())
    return manifest["models"]["model.int8.onnx"]["sha256"]


def test_updates_keep_two_releases_and_refuse_a_wrong_model_before_the_switch(exported_tiny: Path, prefix: Path,
                                                                              tmp_path: Path):
    layout = Layout(prefix)
    logs: list[str] = []
    v1 = apply_bundle(UpdateOptions(models_bundle(exported_tiny, tmp_path / "b1", "release 1"), prefix), logs.append)
    assert (v1.outcome, v1.previous) == ("updated", "r0") and layout.current_id() == v1.release
    assert any("selftest of" in line and "passed" in line for line in logs)
    assert any("not running: switched without a probe" in n for n in v1.notes)
    assert sorted(p.name for p in layout.releases.iterdir()) == sorted(["r0", v1.release])
    v2 = apply_bundle(UpdateOptions(models_bundle(exported_tiny, tmp_path / "b2", "release 2"), prefix), logs.append)
    assert sorted(p.name for p in layout.releases.iterdir()) == sorted([v1.release, v2.release])  # r0 removed
    assert (prefix / "venvs/h0").exists() and (prefix / "current/venv/bin/edgecls").exists()

    before = current_sha(prefix)
    wrong = models_bundle(exported_tiny, tmp_path / "b3", "wrong", wrong=True)
    with pytest.raises(UpdateRefused, match="selftest of the new release failed, nothing was switched.*max \\|d\\|"):
        apply_bundle(UpdateOptions(wrong, prefix), logs.append)
    assert layout.current_id() == v2.release and current_sha(prefix) == before
    assert sorted(p.name for p in layout.releases.iterdir()) == sorted([v1.release, v2.release])
    r = run_edgecls("update", str(wrong), "--prefix", str(prefix))
    assert r.returncode == 1 and r.stderr.startswith("update:") and "error: selftest of the new" in r.stderr


def test_an_update_cut_off_after_its_switch_is_put_back_by_the_next(exported_tiny: Path, prefix: Path,
                                                                    tmp_path: Path):
    layout = Layout(prefix)
    v1 = apply_bundle(UpdateOptions(models_bundle(exported_tiny, tmp_path / "b1", "release 1"), prefix))
    mark_pending(layout, v1.release, "r0")  # as if the power went off before the probe decided
    logs: list[str] = []
    v2 = apply_bundle(UpdateOptions(models_bundle(exported_tiny, tmp_path / "b2", "release 2"), prefix), logs.append)
    assert any(f"an earlier update to {v1.release} did not finish: back on r0" in line for line in logs)
    assert v2.previous == "r0" and not layout.release(v1.release).exists() and not layout.pending.exists()


def test_a_models_only_update_needs_an_install_and_the_services_model(exported_tiny: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EDGECLS_KEYRING", str(tmp_path / "no-keyring.gpg"))
    bundle = models_bundle(exported_tiny, tmp_path / "b", "x")
    r = run_edgecls("update", str(bundle), "--prefix", str(tmp_path / "empty"))
    assert r.returncode == 2 and "an update bundle" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "empty/releases").exists()
    r = run_edgecls("update", str(bundle), "--prefix", str(tmp_path / "p"), "--unit", "bad name")
    assert r.returncode == 2 and "a unit name is letters, digits" in r.stderr
    assert os.environ["EDGECLS_KEYRING"].endswith("no-keyring.gpg")
