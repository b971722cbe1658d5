"""Training runs and data for the tests: the tiny runs' settings, data a model can only tell apart by learning
(fine-tuning and architecture tests), and a probe of glibc's allocator (the trainer tunes it)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgecls.training.config import TrainConfig  # torch-free: importing it here costs nothing


def tiny_config(root: Path, arch: str, data: str = "builtin:shapes", epochs: int = 3, **kw: object) -> TrainConfig:
    """The settings of the session's tiny runs (conftest.py): a real run in a few seconds, 32 px, well above chance."""
    out = root / f"{arch}_{data.split(':')[-1]}"
    return TrainConfig(
        data=data, arch=arch, epochs=epochs, input_size=32, batch_size=32, out=str(out), warmup_epochs=0.3, **kw
    )  # type: ignore[arg-type]


def stripes_folder(root: Path, per_class: int = 12, size: int = 24, seed: int = 0) -> Path:
    """Two classes a model can only tell apart by learning: horizontal vs vertical noisy stripes (PNG)."""
    rng = np.random.default_rng(seed)
    for name in ("horizontal", "vertical"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            im = np.zeros((size, size), np.float32)
            phase = int(rng.integers(0, 6))
            for k in range(phase, size, 6):
                if name == "horizontal":
                    im[k : k + 3, :] = 200
                else:
                    im[:, k : k + 3] = 200
            im = np.clip(im + rng.normal(0, 25, im.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{i:02d}.png"), im)
    return root


def big_block_is_mmapped(nbytes: int = 48 << 20) -> bool:
    """Whether glibc serves a ``nbytes`` block with a mapping of its own (mallinfo2's ``hblkhd`` grows by it)
    rather than from the heap. glibc's dynamic mmap threshold never passes 32 MiB (mallopt(3)), so a 48 MiB block
    is mapped unless M_MMAP_THRESHOLD was raised (edgecls.training.allocator). glibc >= 2.33 only (mallinfo2)."""
    import ctypes
    import ctypes.util

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                         "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(nbytes)
    try:
        return libc.mallinfo2().hblkhd - before >= nbytes
    finally:
        libc.free(block)
