"""``manifest.json`` of a bundle made by ``edgecls pack``: what each model is (variant, sha256, golden file) and
which model the service runs, read through a msgspec schema (types, ranges, sizes) before any field is used.

The manifest is the device's source of truth about the models: selftest takes a model's variant (and so its
tolerance) from here, not from the model's own metadata, and a model whose bytes do not hash to the manifest's
sha256 fails. The manifest itself is covered by SHA256SUMS (and its signature), checked before install.
"""

from __future__ import annotations

import enum
import os
import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.file_digest import sha256_file

MANIFEST_NAME = "manifest.json"
#: Largest manifest read (a bundle of a few hundred files takes a few tens of KiB).
MAX_MANIFEST_BYTES = 4 * 2**20
#: Model file names: they end up in a systemd unit's ExecStart and in paths; nothing a shell, systemd or a
#: terminal would read as syntax (no space, quote, `%`, `$`, `;`, newline, slash).
MODEL_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$")
#: A service's camera as ``run --camera`` takes it: N, /dev/videoN (V4L2) or pi:N (Picamera2, a Pi 5's camera
#: module). It goes into the unit's command line, so nothing else is allowed: a stricter copy (two digits) of
#: runtime/sources/source_specs' spelling, which the device room may not import (tests/test_pack_unit.py checks
#: that every value accepted here is one run accepts).
CAMERA = re.compile(r"^(?:(?:pi:)?[0-9]{1,2}|/dev/video[0-9]{1,2})$")

Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
RelPath = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._/-]{0,250}$", max_length=251)]
Variant = Literal["fp32", "fp16", "int8"]


class ServiceKind(str, enum.Enum):
    """What the device's systemd unit runs (``pack --service``)."""

    run = "run"  # edgecls run MODEL --camera N --json: one JSON line per frame into the journal
    serve = "serve"  # edgecls serve MODEL: HTTP on EDGECLS_HOST:EDGECLS_PORT with the token of the env file


class ModelEntry(msgspec.Struct, frozen=True):
    path: RelPath  # models/NAME, relative to the bundle (or release) folder
    sha256: Sha256
    variant: Variant
    golden: RelPath
    golden_sha256: Sha256


class ServiceEntry(msgspec.Struct, frozen=True):
    kind: ServiceKind
    model: Annotated[str, Meta(pattern=MODEL_NAME.pattern)]
    # an int in bundles made before pi:N (kept readable), else the spelling run --camera takes
    camera: Annotated[int, Meta(ge=0, le=63)] | Annotated[str, Meta(pattern=CAMERA.pattern)] | None = None
    port: Annotated[int, Meta(ge=1, le=65535)] = 8000


class Manifest(msgspec.Struct, frozen=True):
    edgecls: str
    bundle: Literal["install", "update"]
    target: str
    python: str
    models: dict[Annotated[str, Meta(pattern=MODEL_NAME.pattern)], ModelEntry]
    files: dict[RelPath, Sha256]
    service: ServiceEntry | None = None
    system_site_packages: bool = False


def check_model_name(name: str) -> str:
    """``name`` when it is a safe model file name (:data:`MODEL_NAME`), else one line saying why not."""
    if not MODEL_NAME.fullmatch(name):
        raise EdgeclsError(
            f"model file name {name!r}: only letters, digits and . _ - are allowed (it goes into the service's "
            "command line and into paths on the device): rename the file"
        )
    return name


def check_camera(camera: int | str) -> str:
    """``camera`` as the service's ``--camera`` value when it is one (:data:`CAMERA`), else one line saying why not."""
    text = str(camera).strip()
    if not CAMERA.fullmatch(text):
        raise EdgeclsError(f"--camera {camera!r}: expected N or /dev/videoN (V4L2), or pi:N (a Raspberry Pi camera "
                           "module, Picamera2)")
    return text


def find_manifest(folder: str | os.PathLike[str]) -> Path | None:
    p = Path(folder) / MANIFEST_NAME
    return p if p.is_file() else None


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """The manifest at ``path`` (a file or the folder holding it), schema-checked; one line when it is not."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    try:
        if p.stat().st_size > MAX_MANIFEST_BYTES:
            raise EdgeclsError(f"{p}: larger than {MAX_MANIFEST_BYTES >> 20} MiB: not a bundle manifest")
        manifest = msgspec.json.decode(p.read_bytes(), type=Manifest)
    except OSError as e:
        raise EdgeclsError(f"{p}: cannot read the bundle manifest ({e.strerror or e})") from e
    except msgspec.ValidationError as e:
        raise EdgeclsError(f"{p}: not a manifest this edgecls reads ({e}); repack with edgecls pack") from e
    except msgspec.DecodeError as e:
        raise EdgeclsError(f"{p}: not valid JSON ({e})") from e
    for rel in (*manifest.files, *(e.golden for e in manifest.models.values())):
        if any(part in ("", ".", "..") for part in rel.split("/")):
            raise EdgeclsError(f"{p}: {rel!r} is not a plain relative path inside the bundle")
    for name, entry in manifest.models.items():
        if entry.path != f"models/{name}":
            raise EdgeclsError(f"{p}: model {name} is listed at {entry.path}, not models/{name}")
    if manifest.service is not None and manifest.service.model not in manifest.models:
        raise EdgeclsError(f"{p}: the service runs {manifest.service.model}, which the bundle does not hold")
    return manifest


def entry_problems(model: Path, golden: Path, entry: ModelEntry, contract_variant: str) -> list[str]:
    """Why ``model`` (and its golden file) is not what the manifest lists; [] when it is."""
    problems = []
    if sha256_file(model) != entry.sha256:
        problems.append(f"sha256 differs from the manifest's ({entry.sha256[:12]}...): not the packed model")
    if sha256_file(golden) != entry.golden_sha256:
        problems.append(f"{golden.name}: sha256 differs from the manifest's: not the packed golden file")
    if contract_variant != entry.variant:
        problems.append(f"the model says variant {contract_variant!r}, the manifest {entry.variant}: held to "
                        f"{entry.variant}'s tolerance")
    return problems


def manifest_models(folder: Path, manifest: Manifest) -> list[tuple[Path, ModelEntry | None]]:
    """Each model the manifest lists (path, entry), then every other .onnx under ``folder`` (entry None)."""
    listed = [(folder / e.path, e) for e in manifest.models.values()]
    known = {p.resolve() for p, _ in listed}
    others = sorted(p for p in folder.rglob("*.onnx") if p.is_file() and p.resolve() not in known)
    return [*listed, *((p, None) for p in others)]
