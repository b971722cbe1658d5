"""``edgecls pack MODEL... --platform linux-aarch64 --out DIR``: one folder (and DIR.tar.gz) a device without
internet installs from.

Layout of DIR:
  models/            the .onnx files and each one's golden file (found by edgecls.runtime.device.golden_file)
  wheelhouse/        the edgecls wheel built here + its dependencies for the device's platform and Python
  requirements.txt   every wheel pinned == with its sha256 (pip install --require-hashes)
  install.sh         checks every file against SHA256SUMS, makes the venv, then `edgecls update` (release, selftest,
                     the service's unit and settings)
  README.md, manifest.json (each model's variant, sha256 and golden file; the service the unit runs)
  SHA256SUMS         sha256sum of every other file; SHA256SUMS.sig with --sign KEYID (gpg, checked by gpgv)

``--update``: models only (models/, manifest.json, README.md, SHA256SUMS): `edgecls update DIR` on the device.

MODEL is an .onnx file, an export folder (its .onnx files), or a training run (a folder with best.pt/last.pt):
a run is exported here first, and with ``--quantize`` its int8 model is made for the pack's device
(``--target auto`` = the platform's CPU: arm64 for linux-aarch64), not for the machine that packs.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import msgspec

from edgecls.deploy.bundle_files import INSTALL_SH, README, UPDATE_README
from edgecls.deploy.integrity import bundle_fingerprint, hashed_requirements, key_fingerprint, sign_sums, write_sums
from edgecls.deploy.platforms import DEFAULT_PLATFORM, DeviceTarget, device_target, python_tag
from edgecls.deploy.wheelhouse import build_edgecls_wheel, checkout_root, download_wheels, wheel_requirements
from edgecls.export.quant.options import Int8Images, QuantizeOptions
from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.contract.model_contract import contract_from_metadata
from edgecls.runtime.cpu_isa import IsaProfile, target_mismatch
from edgecls.runtime.device.golden_file import find_golden, read_golden
from edgecls.runtime.device.manifest import ServiceEntry, ServiceKind, check_camera, check_model_name
from edgecls.runtime.device.releases import REQUIREMENTS_NAME
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.file_digest import sha256_file

Log = Callable[[str], None]
_VARIANTS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class PackOptions:
    models: tuple[str, ...]
    out: str
    platform: str = DEFAULT_PLATFORM  # the device's (edgecls.deploy.platforms.DEVICE_TARGETS)
    python: str = "3.11"
    extras: tuple[str, ...] = ()  # edgecls extras the device needs too (serve)
    # Training runs among MODELS: also make int8 (None: no int8). Its target "auto" is the device's CPU
    # (DeviceTarget.int8_target), not this machine's.
    quantize: QuantizeOptions | None = None
    int8_images: Int8Images = Int8Images()  # read only with ``quantize``
    fp16: bool = False
    # edgecls.export.export_run.ExportOptions for training runs (None: the defaults); what the fields above say
    # (quantize, int8_images, fp16) and the output folder replace its own.
    export: Any = None
    edgecls_wheel: str | None = None  # None: built from the checkout
    find_links: tuple[str, ...] = ()  # local wheel folders for pip
    no_index: bool = False  # only find_links: nothing downloaded
    tarball: bool = True
    service: ServiceKind = ServiceKind.run  # what the device's unit runs (serve brings the serve extra)
    camera: int | str | None = None  # the service's camera: N, /dev/videoN or pi:N (run: 0 when None; serve: none)
    port: int = 8000  # serve's port (the settings file on the device; kept there on updates)
    system_site_packages: bool = False  # venv sees the system's packages (Debian's python3-picamera2 on a Pi)
    sign: str | None = None  # gpg key id: SHA256SUMS.sig, checked by gpgv on the device
    update: bool = False  # models only, for `edgecls update` on a device that runs edgecls already


@dataclass
class PackResult:
    out: str
    tarball: str | None
    target: str
    python: str
    models: list[str]
    wheels: list[str]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    fingerprint: str = ""  # sha256 of SHA256SUMS: compare it on the device before installing
    signed_by: str | None = None  # the signing key's fingerprint (the device's keyring must hold that key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_run(p: Path) -> bool:
    return p.is_dir() and any((p / name).is_file() for name in ("best.pt", "last.pt"))


def _export_run(run: Path, options: PackOptions, device: DeviceTarget, dest: Path, log: Log) -> list[Path]:
    """Export a training run into ``dest`` (int8 for the device with --quantize); its .onnx files."""
    from edgecls.export.export_run import ExportOptions, export_checkpoint

    quant = options.quantize
    if quant is not None and quant.target == "auto":  # the device decides, not this machine
        quant = replace(quant, target=device.int8_target)
        log(f"pack: int8 for {device.name} is made with --target {quant.target}")
    export = replace(
        options.export or ExportOptions(), out_dir=str(dest), quantize=quant, int8_images=options.int8_images,
        fp16=options.fp16,
    )
    export_checkpoint(run, export, log=log)
    return sorted(dest.glob("*.onnx"))


def _collect_models(options: PackOptions, device: DeviceTarget, work: Path, log: Log) -> list[Path]:
    found: list[Path] = []
    for i, arg in enumerate(options.models):
        p = Path(arg)
        if _is_run(p):
            found += _export_run(p, options, device, work / f"run{i}", log)
        elif p.is_dir():
            models = sorted(m for m in p.glob("*.onnx") if m.is_file())
            if not models:
                raise EdgeclsError(f"{p}: no .onnx model in this folder (and no best.pt: not a training run)")
            found += models
        elif p.is_file() and p.suffix == ".onnx":
            found.append(p)
        else:
            raise EdgeclsError(f"{p}: not an .onnx file, an export folder or a training run")
    names = [check_model_name(m.name) for m in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EdgeclsError(f"two models are named {dupes[0]}: pack them from folders with distinct file names")
    return found


def _device_isa(device: DeviceTarget) -> IsaProfile:
    """The ISA profile the device's int8 target stands for (to warn about files made for another CPU)."""
    isa = {"arm64": "arm-dotprod", "x86-vnni": "x86-vnni"}.get(device.int8_target, "x86-avx2")
    return IsaProfile(isa, (), device.machine)


def _copy_models(models: Sequence[Path], dest: Path, device: DeviceTarget) -> tuple[dict[str, dict], list[str]]:
    """Models and their golden files into ``dest``; each model's manifest entry (the variant is read here, on the
    packing machine, from the file the operator chose); warnings for int8 files made for another CPU."""
    import onnxruntime as ort

    dest.mkdir(parents=True, exist_ok=True)
    copied: dict[str, dict] = {}
    warnings: list[str] = []
    for model in models:
        golden = find_golden(model)
        if golden is None:
            raise EdgeclsError(
                f"{model}: no golden file beside it (model.golden.npz, written by edgecls export): selftest on the "
                "device needs one"
            )
        meta = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_modelmeta()
        contract = contract_from_metadata(meta.custom_metadata_map)
        variant = str(contract.provenance.get("variant", "fp32")) if contract is not None else "fp32"
        if variant not in _VARIANTS:
            raise EdgeclsError(f"{model}: variant {variant[:40]!r} is not one selftest checks ({', '.join(_VARIANTS)})")
        if contract is not None:
            read_golden(golden, contract)  # the device's selftest reads it the same way: refuse a bad one here
            mismatch = target_mismatch(contract.provenance, _device_isa(device))
            if mismatch:
                warnings.append(f"{model.name}: {mismatch}")
        shutil.copy2(model, dest / model.name)
        if not (dest / golden.name).exists():
            shutil.copy2(golden, dest / check_model_name(golden.name))
        copied[model.name] = {
            "path": f"models/{model.name}", "sha256": sha256_file(dest / model.name), "variant": variant,
            "golden": f"models/{golden.name}", "golden_sha256": sha256_file(dest / golden.name),
        }
    return copied, warnings


def _service(options: PackOptions, names: list[str]) -> ServiceEntry:
    """What the unit runs: the int8 model when there is one (the device's fast variant), else the first."""
    main_model = next((n for n in names if ".int8." in n), names[0])
    camera = check_camera(options.camera) if options.camera is not None else None
    return ServiceEntry(options.service, main_model, camera, options.port)


def _write_wheels(options: PackOptions, device: DeviceTarget, stage: Path, extras: tuple[str, ...],
                  log: Log) -> tuple[str, list[Path]]:
    """wheelhouse/ and its hashed requirements.txt; the edgecls version."""
    py_version, abi = python_tag(options.python)
    wheelhouse = stage / "wheelhouse"
    own = build_edgecls_wheel(wheelhouse, Path(options.edgecls_wheel) if options.edgecls_wheel else None)
    version = own.name.split("-")[1]
    spec = f"[{','.join(extras)}]" if extras else ""
    root = checkout_root()
    constraints = root / "constraints.txt" if root is not None and (root / "constraints.txt").is_file() else None
    log(f"pack: wheels for {device.name}, Python {py_version} ({'local' if options.no_index else 'index'})")
    # The local wheel is given as a find-links folder so its extras resolve like any requirement.
    wheels = download_wheels(
        [f"edgecls{spec}=={version}"], wheelhouse, device, py_version, abi, constraints,
        (wheelhouse, *map(Path, options.find_links)), options.no_index, probe=wheel_requirements(own, extras),
    )
    (stage / REQUIREMENTS_NAME).write_text(hashed_requirements(wheels, extras))
    return version, wheels


def _write_install_sh(stage: Path, device: DeviceTarget, py_version: str, version: str,
                      system_site_packages: bool) -> None:
    major, minor = py_version.split(".")
    (stage / "install.sh").write_text(
        INSTALL_SH.format(
            version=version, target=device.name, python=py_version, machine=device.machine, py_major=major,
            py_minor=minor, venv_flags="--system-site-packages" if system_site_packages else "",
        )
    )
    (stage / "install.sh").chmod(0o755)


def pack(options: PackOptions, log: Log = print) -> PackResult:
    """Write the bundle (see the module docstring); the folder appears only when complete."""
    t0 = time.perf_counter()
    device = device_target(options.platform)
    py_version, _abi = python_tag(options.python)
    out = Path(options.out)
    if out.exists() and any(out.iterdir()):
        raise EdgeclsError(f"--out {out}: exists and is not empty")
    if options.sign:
        key_fingerprint(options.sign)  # an unknown key is refused before any work
    if options.camera is not None:
        check_camera(options.camera)  # it goes into the unit's command line: refused before any work
    extras = tuple(options.extras)
    if options.service is ServiceKind.serve and "serve" not in extras and not options.update:
        extras += ("serve",)
        log("pack: --service serve: the serve extra is packed too")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pack-", dir=out.parent) as tmp:
        stage = Path(tmp) / "bundle"
        models = _collect_models(options, device, Path(tmp) / "exports", log)
        entries, warnings = _copy_models(models, stage / "models", device)
        for w in warnings:
            log(f"warning: {w}")
        names = list(entries)
        created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        wheels: list[Path] = []
        if options.update:
            version = "-"
            (stage / "README.md").write_text(UPDATE_README.format(created=created, models=", ".join(names)))
        else:
            version, wheels = _write_wheels(options, device, stage, extras, log)
            _write_install_sh(stage, device, py_version, version, options.system_site_packages)
            (stage / "README.md").write_text(
                README.format(version=version, target=device.name, python=py_version, created=created,
                              models=", ".join(names), wheels=len(wheels))
            )
        manifest = {
            "edgecls": version, "bundle": "update" if options.update else "install", "target": device.name,
            "machine": device.machine, "python": py_version, "pip_platforms": list(device.pip_platforms),
            "int8_target": device.int8_target, "created": created, "extras": list(extras),
            "system_site_packages": options.system_site_packages, "models": entries,
            "service": None if options.update else msgspec.to_builtins(_service(options, names)),
            "files": {p.relative_to(stage).as_posix(): sha256_file(p) for p in sorted(stage.rglob("*")) if p.is_file()},
        }
        atomic_write_text(stage / "manifest.json", json.dumps(manifest, indent=1))
        write_sums(stage)
        signed_by = sign_sums(stage, options.sign) if options.sign else None
        fingerprint = bundle_fingerprint(stage)
        if out.exists():
            out.rmdir()
        shutil.move(str(stage), out)
    tarball = None
    if options.tarball:
        tarball = out.with_name(out.name + ".tar.gz")
        with tarfile.open(tarball, "w:gz", compresslevel=1) as tar:  # wheels are zip files already
            tar.add(out, arcname=out.name)
    return PackResult(
        str(out), str(tarball) if tarball else None, device.name, py_version, names,
        sorted(w.name for w in wheels), warnings, time.perf_counter() - t0, fingerprint, signed_by,
    )
