"""install.sh refuses a bundle that is not what was packed, before anything of it runs: a wheel swapped for one
carrying an extra ``zz_evil.pth`` (same file name) must not be installed and its ``.pth`` must never run; any other
changed, added, missing or linked file is refused the same way; with a keyring on the device the signature must be
good; and pip installs with ``--require-hashes`` (a requirements hash that does not match its wheel stops it, and
no half-made venv stays). A real signed bundle for linux-x86_64 from the local wheel cache, installed by its own
install.sh on this machine."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest
from fixtures_deploy import SigningKey, copy_bundle, run_install

pytestmark = pytest.mark.slow  # one real pack with wheels (about 15 s), installs of about 20 s


def add_pth_to_wheel(wheel: Path, marker: Path) -> None:
    """Rewrite ``wheel`` in place (same name) with an extra ``zz_evil.pth`` that writes ``marker`` when any
    interpreter of the venv starts (site.py executes `import` lines of .pth files)."""
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr("zz_evil.pth", f"import os; open({str(marker)!r}, 'w').write('ran')\n")
    tmp.replace(wheel)


def refused(r: subprocess.CompletedProcess[str], prefix: Path, why: str) -> None:
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert why in r.stderr, r.stderr
    assert not prefix.exists(), "nothing may be created before the bundle is verified"


def test_a_wheel_with_an_extra_pth_is_refused_before_any_code_of_the_bundle_runs(signed_x86_bundle: Path,
                                                                                 tmp_path: Path):
    bundle = copy_bundle(signed_x86_bundle, tmp_path / "bundle")
    marker = tmp_path / "PWNED"
    (wheel,) = (bundle / "wheelhouse").glob("edgecls-*.whl")
    add_pth_to_wheel(wheel, marker)
    r = run_install(bundle, tmp_path / "prefix", EDGECLS_KEYRING=str(tmp_path / "no-keyring.gpg"))
    refused(r, tmp_path / "prefix", "files differ from SHA256SUMS")
    assert f"wheelhouse/{wheel.name}: FAILED" in r.stderr
    assert not marker.exists(), "the .pth ran"


@pytest.mark.parametrize("change", ["model byte", "extra pth", "extra wheel", "missing file", "link", "install.sh"])
def test_any_changed_added_missing_or_linked_file_is_refused(signed_x86_bundle: Path, tmp_path: Path, change: str):
    bundle = copy_bundle(signed_x86_bundle, tmp_path / "bundle")
    if change == "model byte":
        model = bundle / "models/model.onnx"
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0x01
        model.write_bytes(bytes(data))
        why = "files differ from SHA256SUMS"
    elif change == "extra pth":
        (bundle / "wheelhouse/zz_evil.pth").write_text("import os\n")
        why = "files not listed in SHA256SUMS (or listed and missing): wheelhouse/zz_evil.pth"
    elif change == "extra wheel":
        src = next((bundle / "wheelhouse").glob("packaging-*.whl"))
        (bundle / "wheelhouse" / src.name.replace("packaging-", "packagin-")).write_bytes(src.read_bytes())
        why = "files not listed in SHA256SUMS"
    elif change == "missing file":
        (bundle / "README.md").unlink()
        why = "files not listed in SHA256SUMS (or listed and missing): see SHA256SUMS"
    elif change == "link":
        (bundle / "models/extra.onnx").symlink_to(bundle / "models/model.onnx")
        why = "symbolic links in the bundle"
    else:  # the checks run inside install.sh: a changed install.sh is caught only by checking first (README)
        (bundle / "install.sh").write_text((bundle / "install.sh").read_text().replace("set -eu", "set -eu\n:"))
        why = "files differ from SHA256SUMS"
    r = run_install(bundle, tmp_path / "prefix", EDGECLS_KEYRING=str(tmp_path / "no-keyring.gpg"))
    refused(r, tmp_path / "prefix", why)


def test_with_a_keyring_only_a_good_signature_installs(signed_x86_bundle: Path, signing_key: SigningKey,
                                                       tmp_path: Path):
    bundle = copy_bundle(signed_x86_bundle, tmp_path / "bundle")
    # The check a careful user runs by hand before install.sh (README.md, docs/DEVICE.md), with the board's tools.
    by_hand = "gpgv --keyring \"$0\" SHA256SUMS.sig SHA256SUMS && sha256sum -c --strict --quiet SHA256SUMS"
    check = subprocess.run(["sh", "-c", by_hand, str(signing_key.keyring)], cwd=bundle, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    # An attacker changes a model and rewrites SHA256SUMS to match: only the signature can tell.
    model = bundle / "models/model.int8.onnx"
    model.write_bytes(model.read_bytes() + b"\0")
    sums = subprocess.run("find . -type f ! -name 'SHA256SUMS*' | sed 's#^\\./##' | LC_ALL=C sort | "
                          "xargs sha256sum", shell=True, cwd=bundle, capture_output=True, text=True, check=True)
    (bundle / "SHA256SUMS").write_text(sums.stdout)
    r = run_install(bundle, tmp_path / "prefix", EDGECLS_KEYRING=str(signing_key.keyring))
    refused(r, tmp_path / "prefix", "SHA256SUMS.sig is not a good signature")
    assert subprocess.run(["sh", "-c", by_hand, str(signing_key.keyring)], cwd=bundle, capture_output=True).returncode
    (bundle / "SHA256SUMS.sig").unlink()
    r = run_install(bundle, tmp_path / "prefix", EDGECLS_KEYRING=str(signing_key.keyring))
    refused(r, tmp_path / "prefix", "not signed (no SHA256SUMS.sig)")


def test_pip_installs_with_require_hashes_and_leaves_no_half_made_venv(signed_x86_bundle: Path, tmp_path: Path):
    """Defence in depth: SHA256SUMS rewritten to match a requirements.txt whose hash for one wheel is wrong (an
    unsigned bundle on a device without keyring passes step 1): pip itself refuses, and the venv is removed."""
    bundle = copy_bundle(signed_x86_bundle, tmp_path / "bundle")
    (bundle / "SHA256SUMS.sig").unlink()
    req = bundle / "requirements.txt"
    lines = req.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("packaging=="))
    lines[i] = lines[i][:-4] + ("0000" if not lines[i].endswith("0000") else "1111")
    req.write_text("\n".join(lines) + "\n")
    sums = subprocess.run("find . -type f ! -name 'SHA256SUMS*' | sed 's#^\\./##' | LC_ALL=C sort | "
                          "xargs sha256sum", shell=True, cwd=bundle, capture_output=True, text=True, check=True)
    (bundle / "SHA256SUMS").write_text(sums.stdout)
    prefix = tmp_path / "prefix"
    r = run_install(bundle, prefix, EDGECLS_KEYRING=str(tmp_path / "no-keyring.gpg"))
    assert r.returncode != 0 and "HASHES" in r.stderr.upper(), r.stderr[-2000:]
    assert list((prefix / "venvs").iterdir()) == [] and not (prefix / "current").exists()


@pytest.mark.parametrize("bad", ['q"uote', "new\nline", "back\\slash"])
def test_a_prefix_systemd_could_not_run_from_is_refused_before_the_venv(signed_x86_bundle: Path, tmp_path: Path,
                                                                        bad: str):
    prefix = tmp_path / f"pre {bad}"
    r = run_install(signed_x86_bundle, prefix, EDGECLS_KEYRING=str(tmp_path / "no-keyring.gpg"))
    refused(r, prefix, "PREFIX has a")
    assert not list(tmp_path.iterdir())  # no half-install anywhere
