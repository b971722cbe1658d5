"""Keep glibc from handing big activation buffers back to the kernel after every training step.

glibc serves large allocations (above a dynamic threshold of at most 32 MiB) with mmap and returns them with
munmap when freed. A training step at 224 px allocates and frees the same activation tensors every step
(MobileNetV2, batch 32: the first feature maps alone are 32 x 32 x 112 x 112 floats = 51 MB), so each step
page-faults fresh zeroed pages back in: half the CPU time went to the kernel (sys ~= user in ``time``).
Raising the mmap and trim thresholds (mallopt(3): M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) makes freed blocks stay
in the heap for the next step; small inputs (32 px) never reach the mmap threshold and are unaffected.
Process-wide and harmless for inference, but only the trainer calls it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
_THRESHOLD_BYTES = 1 << 30


def keep_freed_memory_for_reuse() -> bool:
    """Raise glibc's mmap/trim thresholds; True when applied, False on other C libraries or platforms."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt  # absent from musl: AttributeError
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _THRESHOLD_BYTES))
