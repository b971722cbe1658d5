"""PyTorch eager baseline for ``edgecls bench``: the checkpoint an ONNX model came from, run by torch itself.

Nothing here imports torch (tests/test_imports.py checks it): the runner that does,
``edgecls.training.eager_runner.load_torch_eager``, is named by :data:`TORCH_LOADER` and imported only in the
benchmark's measuring process, and the bench adds these targets only when torch is importable.
The source checkpoint is found from
(1) an explicit ``--checkpoint``, (2) the contract provenance of the ONNX model (a checkpoint path and/or its
SHA-256), (3) a ``best.pt``/``last.pt``/``*.pt`` beside the model or one folder up (an export dir inside a
run dir) whose SHA-256 matches the provenance, or - when the provenance records no hash - a ``best.pt``
there. Only hashlib is used to find it, so listing baselines does not import torch either.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgecls.runtime.bench.rows import ENGINE_TORCH, BenchTarget

# The loader lives with the training stage (it needs torch); the measuring process imports it by this path.
TORCH_LOADER = "edgecls.training.eager_runner:load_torch_eager"
# Provenance keys export may use for the source checkpoint (path and hash).
_PATH_KEYS = ("checkpoint", "checkpoint_path", "source_checkpoint")
_SHA_KEYS = ("checkpoint_sha256", "source_checkpoint_sha256", "checkpoint_sha")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _provenance(target: BenchTarget) -> dict[str, Any]:
    contract = target.contract
    return dict(contract.provenance) if contract else {}


def _first(prov: dict[str, Any], keys: Sequence[str]) -> str | None:
    for k in keys:
        if isinstance(prov.get(k), str) and prov[k]:
            return prov[k]
    return None


def find_checkpoint(target: BenchTarget) -> Path | None:
    """The checkpoint ``target`` was exported from, or None when it cannot be identified."""
    prov = _provenance(target)
    want_sha = _first(prov, _SHA_KEYS)
    model_dir = Path(target.model).parent
    candidates: list[Path] = []
    recorded = _first(prov, _PATH_KEYS)
    if recorded:
        candidates.append(Path(recorded) if Path(recorded).is_absolute() else model_dir / recorded)
        candidates.append(Path(recorded))
    for folder in (model_dir, model_dir.parent):
        candidates += [folder / "best.pt", folder / "last.pt"] + sorted(folder.glob("*.pt"))
    seen: set[Path] = set()
    for c in candidates:
        if c in seen or not c.is_file():
            continue
        seen.add(c)
        if want_sha is None:
            if (recorded and c == Path(recorded)) or c.name == "best.pt":
                return c
            continue
        if sha256_file(c) == want_sha:
            return c
    return None


def torch_baseline(target: BenchTarget, checkpoint: str | os.PathLike[str], trust: bool = False) -> BenchTarget:
    """The PyTorch eager row for ``checkpoint``, compared with ``target``'s family (its fp32 ORT row).

    ``trust`` reaches the loader (as ``trust_checkpoint``): only then may the checkpoint run code as it loads."""
    ckpt = Path(checkpoint)
    return BenchTarget(
        label=f"PyTorch eager ({ckpt.name})",
        model=str(ckpt),
        engine=ENGINE_TORCH,
        variant="fp32",
        family=target.family,
        loader=TORCH_LOADER,
        contract_json=target.contract_json,
        options={"device": "torch-cpu", **({"trust_checkpoint": True} if trust else {})},
        imports=("torch", "edgecls.training.checkpoint"),
    )


def torch_baselines(
    targets: Sequence[BenchTarget], checkpoint: str | os.PathLike[str] | None = None, trust: bool = False
) -> tuple[list[BenchTarget], list[str]]:
    """One PyTorch eager baseline per model family whose checkpoint is known; plus notes for the user.

    An explicit ``checkpoint`` is attached to the families whose provenance hash matches it, or to the first
    family when no model records a hash.
    """
    families: dict[str, BenchTarget] = {}
    for t in targets:
        if t.is_baseline or t.load_error:
            continue
        if t.family not in families or (t.variant == "fp32" and families[t.family].variant != "fp32"):
            families[t.family] = t
    out: list[BenchTarget] = []
    notes: list[str] = []
    if checkpoint is not None:
        ckpt = Path(checkpoint)
        if not ckpt.is_file():
            return [], [f"{ckpt}: no such checkpoint; PyTorch eager baseline skipped"]
        sha = sha256_file(ckpt)
        matching = [t for t in families.values() if _first(_provenance(t), _SHA_KEYS) == sha]
        if not matching and families:
            matching = [next(iter(families.values()))]
            if _first(_provenance(matching[0]), _SHA_KEYS):
                notes.append(
                    f"{ckpt.name} is not the checkpoint {matching[0].label} records; compared anyway"
                )
        return [torch_baseline(t, ckpt, trust) for t in matching], notes
    for t in families.values():
        found = find_checkpoint(t)
        if found is None:
            notes.append(f"{t.label}: source checkpoint not found (give --checkpoint); no PyTorch baseline")
        else:
            out.append(torch_baseline(t, found, trust))
    return out, notes


def installed_torch_baselines(
    targets: Sequence[BenchTarget],
    checkpoint: str | os.PathLike[str] | None,
    found: Sequence[Path] = (),
    trust: bool = False,
) -> tuple[list[BenchTarget], list[str]]:
    """:func:`torch_baselines` when torch is installed (checked without importing it), else a note saying why not.

    ``found``: checkpoints seen in the run directories given, tried when no model's provenance names one.
    """
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return [], ["torch is not installed: no PyTorch eager baseline"]
    baselines, notes = torch_baselines(targets, checkpoint, trust)
    if not baselines and checkpoint is None and found:
        baselines, notes = torch_baselines(targets, found[0], trust)
    return baselines, notes
