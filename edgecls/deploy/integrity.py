"""What makes a bundle checkable on the device: ``requirements.txt`` with every wheel pinned ``==`` and its
``--hash=sha256:`` (as ``pip hash`` writes it, for ``pip install --require-hashes``), ``SHA256SUMS`` over every
file (coreutils ``sha256sum`` format, checked by ``sha256sum -c --strict``) and, with ``pack --sign KEYID``, a
detached gpg signature of ``SHA256SUMS`` that ``gpgv`` checks on the board.

Why these tools: a minimal Debian board always has coreutils' ``sha256sum``, and ``gpgv`` is priority important
(apt depends on it to check its own archives); the ``openssl`` command line, minisign or signify may be absent.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from edgecls.runtime.device.bundle_check import SIGNATURE_NAME, SUMS_NAME
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.file_digest import sha256_file


def hashed_requirements(wheels: list[Path], extras: tuple[str, ...] = ()) -> str:
    """One ``name==version --hash=sha256:...`` line per wheel (edgecls with its ``extras``): pip's
    ``--require-hashes`` mode needs every requirement, dependencies included, pinned and hashed."""
    from packaging.utils import parse_wheel_filename  # installed with onnxruntime, which requires it

    lines = ["# Every wheel of wheelhouse/, pinned and hashed (pip install --require-hashes). Written by edgecls pack."]
    for wheel in sorted(wheels):
        name, version, _build, _tags = parse_wheel_filename(wheel.name)
        spec = f"{name}[{','.join(extras)}]" if name == "edgecls" and extras else str(name)
        lines.append(f"{spec}=={version} --hash=sha256:{sha256_file(wheel)}")
    return "\n".join(lines) + "\n"


def write_sums(folder: Path) -> Path:
    """``SHA256SUMS`` over every file under ``folder`` (sorted, '/'-separated relative paths)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (SUMS_NAME, SIGNATURE_NAME))
    lines = [f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}\n" for p in files]
    out = folder / SUMS_NAME
    out.write_text("".join(lines), encoding="ascii")
    return out


def _gpg() -> str:
    gpg = shutil.which("gpg")
    if gpg is None:
        raise EdgeclsError("--sign needs gpg on this machine (Debian: apt install gnupg)")
    return gpg


def key_fingerprint(key_id: str) -> str:
    """The full fingerprint of the secret key ``key_id`` (what the device's keyring must hold)."""
    r = subprocess.run([_gpg(), "--batch", "--with-colons", "--fingerprint", "--list-secret-keys", key_id],
                       capture_output=True, text=True, check=False)
    fingerprints = [line.split(":")[9] for line in r.stdout.splitlines() if line.startswith("fpr:")]
    if r.returncode != 0 or not fingerprints:
        raise EdgeclsError(f"--sign {key_id}: no secret key of that id in this gpg keyring")
    return fingerprints[0]


def sign_sums(folder: Path, key_id: str) -> str:
    """``SHA256SUMS.sig``: a detached binary signature by ``key_id``; returns the key's fingerprint."""
    fingerprint = key_fingerprint(key_id)
    r = subprocess.run(
        [_gpg(), "--batch", "--yes", "--local-user", key_id, "--detach-sign", "--output",
         str(folder / SIGNATURE_NAME), str(folder / SUMS_NAME)],
        capture_output=True, text=True, check=False,
    )
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["gpg failed"])[-1]
        raise EdgeclsError(f"--sign {key_id}: gpg could not sign ({last})")
    return fingerprint


def bundle_fingerprint(folder: Path) -> str:
    """sha256 of ``SHA256SUMS``: one value that names every byte of the bundle (compare it out of band)."""
    return hashlib.sha256((folder / SUMS_NAME).read_bytes()).hexdigest()
