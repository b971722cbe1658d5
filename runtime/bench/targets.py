"""Benchmark targets from model paths: the ONNX files a path means, their variant (fp32/fp16/int8), model family
and size, and the providers to try."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from edgecls.runtime.bench.rows import BenchTarget
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import EdgeclsError

#: ``--provider all``: every provider that can run here, measured side by side (the fastest correct one marked).
ALL_PROVIDERS = "all"
_VARIANT_RE = re.compile(r"(?:^|[._-])(int8|uint8|qdq|quant(?:ized)?|fp16|float16|half|fp32|float32)$", re.I)
_VARIANT_NAMES = {"int8": "int8", "uint8": "int8", "qdq": "int8", "quant": "int8", "quantized": "int8",
                  "fp16": "fp16", "float16": "fp16", "half": "fp16", "fp32": "fp32", "float32": "fp32"}
_VARIANT_ORDER = {"fp32": 0, "fp16": 1, "int8": 2}


# --------------------------------------------------------------------------------------------------------
# Model files from paths
# --------------------------------------------------------------------------------------------------------
def expand_models(paths: Sequence[Path]) -> list[Path]:
    """The ONNX files to measure: a file itself; a directory means its ``*.onnx`` files, or those one level down
    (``run/export/``) when it has none."""
    models: list[Path] = []
    for p in paths:
        if p.is_file():
            models.append(p)
            continue
        if not p.is_dir():
            raise EdgeclsError(f"{p}: no such model file or directory")
        found = sorted(p.glob("*.onnx")) or sorted(p.glob("*/*.onnx"))
        if not found:
            raise EdgeclsError(f"{p}: no .onnx models in this directory or its sub-directories")
        models += found
    return list(dict.fromkeys(models))


def run_checkpoints(models: Sequence[Path]) -> list[Path]:
    """The checkpoints ``models`` may come from: the source their folder's ``export_report.json`` records
    (``export RUN --out DIR`` puts the models away from the run), and the ``best.pt`` of the run around them
    (``RUN/export/model.onnx`` -> ``RUN/best.pt``). For the PyTorch baseline (which still checks the SHA-256
    the models' provenance records) and for the run's test split."""
    out: list[Path] = []
    for folder in dict.fromkeys(Path(m).parent for m in models):
        try:
            source = json.loads((folder / "export_report.json").read_text()).get("source_checkpoint")
        except (OSError, ValueError, AttributeError):
            source = None
        if isinstance(source, str) and Path(source).is_file():
            out.append(Path(source))
        out += [c for c in (folder / "best.pt", folder.parent / "best.pt") if c.is_file()]
    return list(dict.fromkeys(out))


def sorted_targets(targets: Sequence[BenchTarget]) -> list[BenchTarget]:
    """Family by family, fp32 before fp16 before int8: the order of the report's rows."""
    return sorted(targets, key=lambda t: (t.family, _VARIANT_ORDER.get(t.variant, 9), t.label))


# --------------------------------------------------------------------------------------------------------
# Targets from model files
# --------------------------------------------------------------------------------------------------------
def file_size(path: str | os.PathLike[str]) -> int | None:
    """Bytes of an ONNX file plus its external-data sibling (``model.onnx.data``) when present."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError:
        return None
    data = p.with_name(p.name + ".data")
    return size + (data.stat().st_size if data.is_file() else 0)


def _strip_variant(stem: str) -> tuple[str, str | None]:
    m = _VARIANT_RE.search(stem)
    if not m:
        return stem, None
    return stem[: m.start()], _VARIANT_NAMES[m.group(1).lower()]


def variant_of(path: Path, contract: ModelContract | None) -> str:
    """fp32/fp16/int8 from the file name (``model.int8.onnx``), else the contract's provenance."""
    _, from_name = _strip_variant(path.stem)
    if from_name:
        return from_name
    prov = contract.provenance if contract else {}
    if isinstance(prov.get("variant"), str) and prov["variant"].lower() in _VARIANT_NAMES:
        return _VARIANT_NAMES[prov["variant"].lower()]
    if prov.get("quantization"):
        return "int8"
    return "fp32"


def family_of(path: Path) -> str:
    """Variants exported side by side (``dir/model.onnx``, ``dir/model.int8.onnx``) share a family."""
    base, _ = _strip_variant(path.stem)
    return str(path.parent / (base or path.stem))


def inspect_model(path: str | os.PathLike[str]) -> BenchTarget:
    """A :class:`BenchTarget` for one ONNX file (contract, variant, family, size) or its ``load_error``."""
    from edgecls.runtime.contract.model_contract import contract_from_metadata
    from edgecls.runtime.providers.session import create_session

    p = Path(path)
    label = p.name
    try:
        sess, _ = create_session(p, provider="cpu", threads=1)
        contract = contract_from_metadata(sess.get_modelmeta().custom_metadata_map)
    except EdgeclsError as e:
        return BenchTarget(
            label=label,
            model=str(p),
            family=family_of(p),
            variant=variant_of(p, None),
            load_error=str(e),
            size_bytes=file_size(p),
        )
    return BenchTarget(
        label=label,
        model=str(p),
        variant=variant_of(p, contract),
        family=family_of(p),
        contract_json=contract.to_json() if contract else None,
        size_bytes=file_size(p),
    )


def source_sha256(target: BenchTarget) -> str | None:
    """The SHA-256 of the checkpoint a model was exported from, as its contract's provenance records it."""
    contract = target.contract
    sha = contract.provenance.get("checkpoint_sha256") if contract else None
    return sha if isinstance(sha, str) and sha else None


def group_by_provenance(targets: list[BenchTarget]) -> list[BenchTarget]:
    """Variants of one checkpoint share a family wherever their files are (``fp32.onnx`` and
    ``other/dir/model.int8.onnx``): the family of the first fp32 file with that checkpoint hash."""
    first: dict[str, str] = {}
    for t in sorted(targets, key=lambda t: t.variant != "fp32"):  # stable: fp32 files name the family
        sha = source_sha256(t)
        if sha and sha not in first:
            first[sha] = t.family
    return [
        dataclasses.replace(t, family=first[sha]) if (sha := source_sha256(t)) and first[sha] != t.family else t
        for t in targets
    ]


def model_targets(models: Sequence[str | os.PathLike[str] | BenchTarget]) -> list[BenchTarget]:
    """Targets for model files (inspected once here) or targets passed through unchanged."""
    targets = group_by_provenance([m if isinstance(m, BenchTarget) else inspect_model(m) for m in models])
    # Labels must tell rows apart: two "model.onnx" from different folders get their folder prefixed.
    names = [t.label for t in targets]
    return [
        dataclasses.replace(t, label=f"{Path(t.model).parent.name}/{t.label}")
        if names.count(t.label) > 1 and not t.is_baseline
        else t
        for t in targets
    ]


def expand_providers(providers: Sequence[str]) -> list[str]:
    """``cpu,openvino`` -> both; ``all`` -> every provider that can run here (``local_providers``; the sweep then
    marks the fastest correct one); ``auto`` -> the one every command's ``auto`` runs on; other names are kept as
    typed (unknown ones become error rows)."""
    from edgecls.runtime.providers.catalog import local_providers
    from edgecls.runtime.providers.session import auto_provider

    out: list[str] = []
    for item in providers:
        for p in (x.strip() for x in item.split(",") if x.strip()):
            names = local_providers() if p == ALL_PROVIDERS else [auto_provider()] if p == "auto" else [p]
            seen = {provider_display(o) for o in out}
            out += [n for n in names if provider_display(n) not in seen]
    return out


def provider_display(provider: str) -> str:
    from edgecls.runtime.providers.names import resolve_provider_name

    try:
        return resolve_provider_name(provider)
    except EdgeclsError:
        return provider
