"""The SHA-256 of a file, read in 1 MiB blocks (never whole into memory): the one place edgecls hashes a file it
did not just make. A bundle's manifest and SHA256SUMS (deploy, ``edgecls update``), the notices' memory of a model
file, and the bench's search for the checkpoint a model came from all name a file by this digest."""

from __future__ import annotations

import hashlib
import os


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The file's SHA-256 as 64 hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
