"""The manifest a bundle carries decides on the device: selftest's variant (so its tolerance) and each model's
sha256 come from it, not from the model's own metadata; `edgecls update`'s check of SHA256SUMS (changed, added,
missing files, links, signature); model names a unit could misread are refused at pack time.

Models-only bundles (`pack --update`) need no wheels, so these run without the wheel cache."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from fixtures_deploy import SigningKey, claim_variant, copy_bundle, scale_weights
from fixtures_runtime import run_edgecls

from edgecls.runtime.errors import EdgeclsError


@pytest.fixture(scope="module")
def update_bundle(exported_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`edgecls pack EXPORT --update` (library call): models, golden file, manifest, SHA256SUMS; no wheels."""
    from edgecls.deploy.pack import PackOptions, pack

    out = tmp_path_factory.mktemp("update") / "bundle"
    pack(PackOptions(models=(str(exported_tiny),), out=str(out), platform="linux-x86_64", update=True,
                     tarball=False), log=lambda _m: None)
    return out


def tamper_as_int8(model: Path) -> None:
    """30% of the largest layer's weights x1.6 (a corrupted fp32 file, still valid), and its contract rewritten
    to claim variant int8 (whose tolerance is wide enough to pass it)."""
    scale_weights(model, 0.3, 1.6)
    claim_variant(model, "int8")


def rows(stdout: str) -> dict[str, dict]:
    return {Path(r["model"]).name: r for r in map(json.loads, filter(str.strip, stdout.splitlines()))}


def test_selftest_of_a_pack_takes_variant_and_sha256_from_the_manifest(update_bundle: Path, tmp_path: Path):
    bundle = copy_bundle(update_bundle, tmp_path / "b")
    good = run_edgecls("selftest", str(bundle), "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    assert {n: r["variant"] for n, r in rows(good.stdout).items()} == {
        "model.onnx": "fp32", "model.int8.onnx": "int8", "model.fp16.onnx": "fp16"}

    tamper_as_int8(bundle / "models/model.onnx")
    # The attack is real: checked alone, the file's own metadata buys it int8's tolerance and it passes.
    alone = run_edgecls("selftest", str(bundle / "models/model.onnx"), "--json")
    assert alone.returncode == 0 and rows(alone.stdout)["model.onnx"]["variant"] == "int8", alone.stdout

    r = run_edgecls("selftest", str(bundle), "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    row = rows(r.stdout)["model.onnx"]
    assert not row["passed"] and row["variant"] == "fp32"
    assert any("sha256 differs from the manifest" in p for p in row["problems"])
    assert any("max |d|" in p for p in row["problems"]), row["problems"]  # held to fp32's bound
    assert row["max_abs_diff"] > row["tolerance"]["max_abs_diff"]
    assert all(rows(r.stdout)[n]["passed"] for n in ("model.int8.onnx", "model.fp16.onnx"))


def test_the_manifests_variant_decides_even_when_the_sha256_is_made_to_match(update_bundle: Path, tmp_path: Path):
    from edgecls.runtime.file_digest import sha256_file

    bundle = copy_bundle(update_bundle, tmp_path / "b")
    tamper_as_int8(bundle / "models/model.onnx")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["models"]["model.onnx"]["sha256"] = sha256_file(bundle / "models/model.onnx")
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    r = run_edgecls("selftest", str(bundle), "--json")
    assert r.returncode == 1, r.stdout
    row = rows(r.stdout)["model.onnx"]
    assert row["variant"] == "fp32" and not any("sha256" in p for p in row["problems"])
    assert any("max |d|" in p for p in row["problems"]) and any("variant 'int8'" in p for p in row["problems"])


def test_a_model_the_manifest_does_not_list_fails_the_selftest(update_bundle: Path, tmp_path: Path):
    bundle = copy_bundle(update_bundle, tmp_path / "b")
    shutil.copy2(bundle / "models/model.onnx", bundle / "models/other.onnx")
    r = run_edgecls("selftest", str(bundle), "--json")
    assert r.returncode == 1
    assert any("not listed in the bundle's manifest" in p for p in rows(r.stdout)["other.onnx"]["problems"])


@pytest.mark.parametrize("change", ["changed", "added", "missing", "link", "newline-name"])
def test_update_refuses_a_bundle_that_differs_from_its_sums(update_bundle: Path, tmp_path: Path, change: str):
    from edgecls.runtime.device.bundle_check import verify_bundle

    bundle = copy_bundle(update_bundle, tmp_path / "b")
    assert verify_bundle(bundle, keyring=tmp_path / "none.gpg") == "unsigned"
    model = bundle / "models/model.int8.onnx"
    if change == "changed":
        data = bytearray(model.read_bytes())
        data[-1] ^= 1
        model.write_bytes(bytes(data))
    elif change == "added":
        (bundle / "models/zz_evil.pth").write_text("import os\n")
    elif change == "missing":
        (bundle / "README.md").unlink()
    elif change == "link":
        (bundle / "models/extra.onnx").symlink_to(model)
    else:
        (bundle / "models/a\nb.onnx").write_bytes(b"x")
    with pytest.raises(EdgeclsError, match="refused|missing"):
        verify_bundle(bundle, keyring=tmp_path / "none.gpg")
    r = run_edgecls("update", str(bundle), "--prefix", str(tmp_path / "prefix"))
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "prefix/releases").exists()


def test_a_keyring_on_the_device_requires_a_good_signature(exported_tiny: Path, signing_key: SigningKey,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from edgecls.deploy.integrity import write_sums
    from edgecls.deploy.pack import PackOptions, pack
    from edgecls.runtime.device.bundle_check import verify_bundle

    monkeypatch.setenv("GNUPGHOME", str(signing_key.home))
    bundle = tmp_path / "signed"
    result = pack(PackOptions(models=(str(exported_tiny / "model.onnx"),), out=str(bundle), platform="linux-x86_64",
                              update=True, tarball=False, sign=signing_key.fingerprint), log=lambda _m: None)
    assert result.signed_by == signing_key.fingerprint
    assert verify_bundle(bundle, keyring=signing_key.keyring).startswith("signature good")
    # An attacker who changes a file and rewrites SHA256SUMS cannot sign it.
    (bundle / "README.md").write_text("changed\n")
    write_sums(bundle)
    assert verify_bundle(bundle, keyring=tmp_path / "no-keyring.gpg") == "signature not checked: no keyring at " \
        f"{tmp_path / 'no-keyring.gpg'}"
    with pytest.raises(EdgeclsError, match="not a good signature"):
        verify_bundle(bundle, keyring=signing_key.keyring)
    (bundle / "SHA256SUMS.sig").unlink()
    with pytest.raises(EdgeclsError, match="not signed"):
        verify_bundle(bundle, keyring=signing_key.keyring)


@pytest.mark.parametrize("name", ["my model.onnx", "x#;1e touch FILE;#.onnx", "a$b.onnx", "100%.onnx"])
def test_pack_refuses_model_names_a_unit_or_shell_could_misread(exported_tiny: Path, tmp_path: Path, name: str):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy2(exported_tiny / "model.onnx", src / name)
    shutil.copy2(exported_tiny / "model.golden.npz", src / (name[: -len(".onnx")] + ".golden.npz"))
    r = run_edgecls("pack", str(src / name), "--platform", "linux-x86_64", "--out", str(tmp_path / "b"), "--no-index")
    assert r.returncode == 2 and "only letters, digits and . _ - are allowed" in r.stderr, r.stderr
    assert not (tmp_path / "b").exists() and not Path("FILE").exists()


def test_pack_prints_the_bundle_and_signing_key_fingerprints(exported_tiny: Path, signing_key: SigningKey,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GNUPGHOME", str(signing_key.home))
    out = tmp_path / "b"
    r = run_edgecls("pack", str(exported_tiny / "model.onnx"), "--update", "--sign", signing_key.fingerprint,
                    "--platform", "linux-x86_64", "--out", str(out))
    assert r.returncode == 0, r.stderr
    sums = hashlib.sha256((out / "SHA256SUMS").read_bytes()).hexdigest()
    assert f"bundle fingerprint (sha256 of SHA256SUMS): {sums}" in r.stdout
    assert f"signed by key {signing_key.fingerprint}" in r.stdout and "edgecls update DIR" in r.stdout
    r = run_edgecls("pack", str(exported_tiny / "model.onnx"), "--update", "--sign", "nobody@example.invalid",
                    "--platform", "linux-x86_64", "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "no secret key of that id" in r.stderr and not (tmp_path / "c").exists()
