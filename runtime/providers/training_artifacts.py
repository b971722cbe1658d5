"""Recognising what training produced (a run folder, a ``.pt`` checkpoint) where an ONNX model was expected.

``run``, ``serve``, ``bench`` and ``batch`` take an exported ``.onnx`` file; a newcomer naturally hands them
the run folder or its ``best.pt``. Instead of "no such model file" or a protobuf error, they are told the step
they skipped. Torch-free: only file names and the first bytes are looked at.
"""

from __future__ import annotations

from pathlib import Path

#: Files only an ``edgecls train`` run folder holds.
RUN_MARKERS = ("best.pt", "last.pt")
#: ``torch.save`` writes a zip archive (PyTorch >= 1.6); older ones a pickle (protocol 2+ starts with 0x80).
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in RUN_MARKERS)


def is_torch_checkpoint(path: Path) -> bool:
    if not path.is_file() or path.suffix.lower() not in (".pt", ".pth", ".ckpt"):
        return False
    with path.open("rb") as f:
        head = f.read(4)
    return any(head.startswith(magic) for magic in CHECKPOINT_MAGIC)


def export_first_hint(path: str | Path) -> str | None:
    """The fix when ``path`` is a training run folder or a torch checkpoint instead of an ONNX model, else None.

    -> e.g. "runs/photos is a training run, not an ONNX model: export first: `edgecls export runs/photos
    --quantize`, then use runs/photos/export/model.int8.onnx" (or just the file to use, once it exists).
    """
    path = Path(path)
    if is_run_folder(path):
        what, run = "a training run", path
    elif is_torch_checkpoint(path):
        what = "a PyTorch checkpoint"
        run = path.parent if is_run_folder(path.parent) else path
    else:
        return None
    exported = (run if run.is_dir() else run.parent) / "export" / "model.int8.onnx"
    if exported.is_file():
        return f"{path} is {what}, not an ONNX model: use its export, {exported}"
    return f"{path} is {what}, not an ONNX model: export first: `edgecls export {run} --quantize`, then use {exported}"
