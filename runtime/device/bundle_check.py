"""Is this folder the bundle that was packed? Every file against ``SHA256SUMS`` (sha256sum's format), no file that
``SHA256SUMS`` does not list, no symbolic link, and with a keyring on this machine a good ``gpgv`` signature.

install.sh does the same with coreutils ``sha256sum -c --strict``, ``find`` and ``gpgv`` before anything of the
bundle runs (it cannot run edgecls's Python before the wheels are checked); ``edgecls update`` runs installed,
already trusted code, and checks a models-only update bundle here before taking anything from it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.file_digest import sha256_file

SUMS_NAME = "SHA256SUMS"
SIGNATURE_NAME = "SHA256SUMS.sig"
#: Where a device keeps the public keys its bundles must be signed by (``gpg --export KEYID > keyring.gpg``).
DEFAULT_KEYRING = "/etc/edgecls/keyring.gpg"
#: One line of ``sha256sum`` output for a file read in text mode: 64 hex digits, two spaces, the path.
_SUMS_LINE = re.compile(r"^([0-9a-f]{64})  ([A-Za-z0-9_-][A-Za-z0-9._/-]*)$")


def keyring_path() -> Path:
    return Path(os.environ.get("EDGECLS_KEYRING", DEFAULT_KEYRING))


def read_sums(folder: Path) -> dict[str, str]:
    """``SHA256SUMS`` of ``folder``: relative path -> sha256; a malformed line is refused (``--strict``)."""
    try:
        text = (folder / SUMS_NAME).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise EdgeclsError(f"{folder}: no readable {SUMS_NAME}: not a bundle made by edgecls pack ({e})") from e
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        m = _SUMS_LINE.match(line)
        if m is None or any(part in (".", "..") for part in m.group(2).split("/")):
            raise EdgeclsError(f"{folder / SUMS_NAME}: line {number} is not `SHA256  relative/path`")
        sums[m.group(2)] = m.group(1)
    return sums


def _present_files(folder: Path) -> list[str]:
    """Every non-directory under ``folder`` (relative, '/'-separated); symbolic links are refused."""
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(top) / name
            if path.is_symlink():
                raise EdgeclsError(f"{folder}: symbolic link {path.relative_to(folder)!s:.80} in the bundle: refused")
        found += [(Path(top) / name).relative_to(folder).as_posix() for name in files]
    return found


def check_signature(folder: Path, keyring: Path | None = None) -> str:
    """With a keyring on this device the bundle must carry a good signature by one of its keys (gpgv); without
    one, a signature cannot be checked. Returns what was done, for the log."""
    keyring = keyring or keyring_path()
    signature = folder / SIGNATURE_NAME
    if not keyring.is_file():
        return f"signature not checked: no keyring at {keyring}" if signature.exists() else "unsigned"
    if not signature.is_file():
        raise EdgeclsError(f"{folder}: not signed (no {SIGNATURE_NAME}) and {keyring} asks for signed bundles")
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise EdgeclsError(f"{keyring} asks for signed bundles but gpgv is missing (Debian: apt install gpgv)")
    r = subprocess.run([gpgv, "--keyring", str(keyring), str(signature), str(folder / SUMS_NAME)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise EdgeclsError(f"{folder / SIGNATURE_NAME}: not a good signature by a key in {keyring}")
    return f"signature good ({keyring})"


def verify_bundle(folder: str | os.PathLike[str], keyring: Path | None = None) -> str:
    """Refuse ``folder`` unless it is exactly what ``SHA256SUMS`` lists (and signed, when this device asks)."""
    folder = Path(folder)
    signature = check_signature(folder, keyring)
    sums = read_sums(folder)
    present = set(_present_files(folder)) - {SUMS_NAME, SIGNATURE_NAME}
    extra, missing = sorted(present - set(sums)), sorted(set(sums) - present)
    if extra:
        raise EdgeclsError(f"{folder}: files not listed in {SUMS_NAME}: {', '.join(extra[:3])!r}: refused")
    if missing:
        raise EdgeclsError(f"{folder}: files listed in {SUMS_NAME} are missing: {', '.join(missing[:3])}")
    changed = [rel for rel, digest in sorted(sums.items()) if sha256_file(folder / rel) != digest]
    if changed:
        raise EdgeclsError(f"{folder}: files differ from {SUMS_NAME}: {', '.join(changed[:3])}: refused")
    return signature
