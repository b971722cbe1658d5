"""``edgecls pack MODEL... --target linux-aarch64 --out DIR``: one folder (and DIR.tar.gz) a device without
internet installs from.

Layout of DIR:
  models/            the .onnx files and each one's golden file (found by edgecls.runtime.golden_file)
  wheelhouse/        the edgecls wheel built here + its dependencies for the device's platform and Python
  install.sh         offline install into a venv, then `edgecls selftest` of the models
  edgecls.service    systemd unit template (`edgecls run --camera 0 --json`, or `edgecls serve`)
  README.md, manifest.json

MODEL is an .onnx file, an export folder (its .onnx files), or a training run (a folder with best.pt/last.pt):
a run is exported here first, and with ``--quantize`` its int8 model is made for the pack's device
(``quantize --target`` = the device's: arm64 for linux-aarch64), not for the machine that packs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edgecls.deploy.bundle_files import INSTALL_SH, README, SERVICE_UNIT
from edgecls.deploy.platforms import DeviceTarget, device_target, python_tag
from edgecls.deploy.wheelhouse import build_edgecls_wheel, checkout_root, download_wheels, wheel_requirements
from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.contract import contract_from_metadata
from edgecls.runtime.cpu_isa import IsaProfile, target_mismatch
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.golden_file import find_golden, read_golden

Log = Callable[[str], None]


@dataclass(frozen=True)
class PackOptions:
    models: tuple[str, ...]
    out: str
    target: str = "linux-aarch64"
    python: str = "3.11"
    extras: tuple[str, ...] = ()  # edgecls extras the device needs too (serve)
    quantize: bool = False  # training runs among MODELS: also make int8 for the device
    quantize_target: str | None = None  # None: the device's (DeviceTarget.int8_target)
    fp16: bool = False
    export: Any = None  # edgecls.export.export_run.ExportOptions for training runs (None: the defaults)
    edgecls_wheel: str | None = None  # None: built from the checkout
    find_links: tuple[str, ...] = ()  # local wheel folders for pip
    no_index: bool = False  # only find_links: nothing downloaded
    tarball: bool = True


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_run(p: Path) -> bool:
    return p.is_dir() and any((p / name).is_file() for name in ("best.pt", "last.pt"))


def _export_run(run: Path, options: PackOptions, device: DeviceTarget, dest: Path, log: Log) -> list[Path]:
    """Export a training run into ``dest`` (int8 for the device with --quantize); its .onnx files."""
    from edgecls.export.export_run import ExportOptions, export_checkpoint
    from edgecls.export.quant.options import QuantizeOptions

    export = options.export or ExportOptions()
    quant = export.quantize if export.quantize is not None else (QuantizeOptions() if options.quantize else None)
    if quant is not None and quant.target == "auto":  # the device decides, not this machine
        quant = replace(quant, target=options.quantize_target or device.int8_target)
        log(f"pack: int8 for {device.name} is made with quantize --target {quant.target}")
    export = replace(export, out_dir=str(dest), quantize=quant, fp16=export.fp16 or options.fp16)
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
    names = [m.name for m in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EdgeclsError(f"two models are named {dupes[0]}: pack them from folders with distinct file names")
    return found


def _device_isa(device: DeviceTarget) -> IsaProfile:
    """The ISA profile the device's int8 target stands for (to warn about files made for another CPU)."""
    isa = {"arm64": "arm-dotprod", "x86-vnni": "x86-vnni"}.get(device.int8_target, "x86-avx2")
    return IsaProfile(isa, (), device.machine)


def _copy_models(models: Sequence[Path], dest: Path, device: DeviceTarget) -> tuple[list[str], list[str]]:
    """Models and their golden files into ``dest``; warnings for int8 files made for another CPU."""
    import onnxruntime as ort

    dest.mkdir(parents=True, exist_ok=True)
    copied, warnings = [], []
    for model in models:
        golden = find_golden(model)
        if golden is None:
            raise EdgeclsError(
                f"{model}: no golden file beside it (model.golden.npz, written by edgecls export): selftest on the "
                "device needs one"
            )
        meta = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_modelmeta()
        contract = contract_from_metadata(meta.custom_metadata_map)
        if contract is not None:
            read_golden(golden, contract)  # the device's selftest reads it the same way: refuse a bad one here
            mismatch = target_mismatch(contract.provenance, _device_isa(device))
            if mismatch:
                warnings.append(f"{model.name}: {mismatch}")
        shutil.copy2(model, dest / model.name)
        if not (dest / golden.name).exists():
            shutil.copy2(golden, dest / golden.name)
        copied.append(model.name)
    return copied, warnings


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack(options: PackOptions, log: Log = print) -> PackResult:
    """Write the bundle (see the module docstring); the folder appears only when complete."""
    t0 = time.perf_counter()
    device = device_target(options.target)
    py_version, abi = python_tag(options.python)
    out = Path(options.out)
    if out.exists() and any(out.iterdir()):
        raise EdgeclsError(f"--out {out}: exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pack-", dir=out.parent) as tmp:
        stage = Path(tmp) / "bundle"
        models = _collect_models(options, device, Path(tmp) / "exports", log)
        names, warnings = _copy_models(models, stage / "models", device)
        for w in warnings:
            log(f"warning: {w}")
        wheelhouse = stage / "wheelhouse"
        own = build_edgecls_wheel(wheelhouse, Path(options.edgecls_wheel) if options.edgecls_wheel else None)
        version = own.name.split("-")[1]
        extras = f"[{','.join(options.extras)}]" if options.extras else ""
        root = checkout_root()
        constraints = root / "constraints.txt" if root is not None and (root / "constraints.txt").is_file() else None
        log(f"pack: wheels for {device.name}, Python {py_version} ({'local' if options.no_index else 'index'})")
        # The local wheel is given as a find-links folder so its extras resolve like any requirement.
        wheels = download_wheels(
            [f"edgecls{extras}=={version}"], wheelhouse, device, py_version, abi, constraints,
            (wheelhouse, *map(Path, options.find_links)), options.no_index,
            probe=wheel_requirements(own, options.extras),
        )
        major, minor = py_version.split(".")
        (stage / "install.sh").write_text(
            INSTALL_SH.format(
                version=version, target=device.name, python=py_version, machine=device.machine, py_major=major,
                py_minor=minor, requirement=f"edgecls{extras}=={version}",
            )
        )
        (stage / "install.sh").chmod(0o755)
        main_model = next((n for n in names if ".int8." in n), names[0])
        (stage / "edgecls.service").write_text(SERVICE_UNIT.format(model=main_model))
        created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        (stage / "README.md").write_text(
            README.format(version=version, target=device.name, python=py_version, created=created,
                          models=", ".join(names), wheels=len(wheels))
        )
        manifest = {
            "edgecls": version, "target": device.name, "machine": device.machine, "python": py_version,
            "pip_platforms": list(device.pip_platforms), "int8_target": device.int8_target, "created": created,
            "extras": list(options.extras),
            "files": {str(p.relative_to(stage)): _sha256(p) for p in sorted(stage.rglob("*")) if p.is_file()},
        }
        atomic_write_text(stage / "manifest.json", json.dumps(manifest, indent=1))
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
        sorted(w.name for w in wheels), warnings, time.perf_counter() - t0,
    )
