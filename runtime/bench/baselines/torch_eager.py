"""PyTorch eager baseline for ``edgecls bench``: the checkpoint an ONNX model came from, run by torch itself.

Nothing here imports torch (tests/test_imports.py checks it): the runner that does,
``edgecls.training.eager_runner.load_torch_eager``, is named by :data:`TORCH_LOADER` and imported only in the
benchmark's measuring process, and the bench adds these targets only when torch is importable.
The source checkpoint is the first of these whose SHA-256 is the one the model's contract records
(``provenance.checkpoint_sha256``, written by export): an explicit ``--checkpoint``; the file the provenance names
(``provenance.checkpoint``) beside the model; the checkpoints found around the models given (a run folder's
``best.pt``, an export report's ``source_checkpoint``); any ``best.pt``/``last.pt``/``*.pt`` beside the model or one
folder up. A model that records no hash takes the file its provenance names, else a ``best.pt`` among them.
Only hashlib is used to find it, so listing baselines does not import torch either.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from edgecls.runtime.bench.rows import ENGINE_TORCH, BenchTarget
from edgecls.runtime.bench.targets import source_sha256
from edgecls.runtime.file_digest import sha256_file

# The loader lives with the training stage (it needs torch); the measuring process imports it by this path.
TORCH_LOADER = "edgecls.training.eager_runner:load_torch_eager"


def find_checkpoint(target: BenchTarget, known: Sequence[Path] = ()) -> Path | None:
    """The checkpoint ``target`` was exported from (``known``: checkpoints found around the models given), or
    None when it cannot be identified."""
    contract = target.contract
    recorded = contract.provenance.get("checkpoint") if contract else None
    want_sha = source_sha256(target)
    model_dir = Path(target.model).parent
    candidates: list[Path] = []
    if isinstance(recorded, str) and recorded:
        candidates += [model_dir / recorded, Path(recorded)]
    candidates += known
    for folder in (model_dir, model_dir.parent):
        candidates += [folder / "best.pt", folder / "last.pt", *sorted(folder.glob("*.pt"))]
    for c in dict.fromkeys(candidates):
        if not c.is_file():
            continue
        if want_sha is None:
            if (recorded and c.name == Path(recorded).name) or c.name == "best.pt":
                return c
        elif sha256_file(c) == want_sha:
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
    targets: Sequence[BenchTarget],
    checkpoint: str | os.PathLike[str] | None = None,
    trust: bool = False,
    known: Sequence[Path] = (),
) -> tuple[list[BenchTarget], list[str]]:
    """One PyTorch eager baseline per model family whose checkpoint is found; plus notes for the user.

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
        matching = [t for t in families.values() if source_sha256(t) == sha]
        if not matching and families:
            matching = [next(iter(families.values()))]
            if source_sha256(matching[0]):
                notes.append(f"{ckpt.name} is not the checkpoint {matching[0].label} records; compared anyway")
        return [torch_baseline(t, ckpt, trust) for t in matching], notes
    for t in families.values():
        found = find_checkpoint(t, known)
        if found is None:
            notes.append(f"{t.label}: source checkpoint not found (give --checkpoint); no PyTorch baseline")
        else:
            out.append(torch_baseline(t, found, trust))
    return out, notes


def installed_torch_baselines(
    targets: Sequence[BenchTarget],
    checkpoint: str | os.PathLike[str] | None,
    known: Sequence[Path] = (),
    trust: bool = False,
) -> tuple[list[BenchTarget], list[str]]:
    """:func:`torch_baselines` when torch is installed (checked without importing it), else a note saying why not."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return [], ["torch is not installed: no PyTorch eager baseline"]
    return torch_baselines(targets, checkpoint, trust, known)
