"""What the fuzz tests mutate: small valid files in every format OpenCV reads here, and a hypothesis strategy
that edits them. ``EDGECLS_FUZZ_EXAMPLES`` scales how many examples each fuzz test runs (default 300, so the suite
stays fast); the figures in docs/RELIABILITY.md come from one run with ``EDGECLS_FUZZ_EXAMPLES=20000``.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("EDGECLS_FUZZ_EXAMPLES", "300"))


def _seed_files() -> list[bytes]:
    """Small valid files in every format OpenCV reads here: their mutations reach deep into the decoders."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (12, 17, 3), dtype=np.uint8)
    seeds = []
    for ext, params in ((".jpg", ()), (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)), (".png", ()), (".bmp", ()),
                        (".webp", ()), (".tiff", ()), (".ppm", ()), (".pgm", ())):
        src = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if ext == ".pgm" else img
        ok, buf = cv2.imencode(ext, src, list(params))
        if ok:
            seeds.append(buf.tobytes())
    ok, buf = cv2.imencode(".png", img.astype(np.uint16) * 257)
    seeds.append(buf.tobytes())
    return seeds


SEEDS = _seed_files()


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A valid file with a few random edits: byte flips, a cut, an insertion or a duplicated chunk."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup", "zero"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 256))]
        elif op == "zero":
            data[pos : pos + 16] = bytes(len(data[pos : pos + 16]))
    return bytes(data)
