"""Fixtures of the reliability tests: a corpus of real odd and broken image files, tiny file systems
(full, read-only) and helpers to run ``edgecls`` in a subprocess and read its JSON Lines.

The corpus is written once per session. Each file is made the way such files appear in the wild: with
OpenCV or Pillow encoders (palette, CMYK, EXIF orientation), cut short with a plain byte slice (truncated),
or renamed (text with a ``.jpg`` name, a PNG called ``.jpg``). Cases that cannot be made here are left out
with the reason in :attr:`OddImages.skipped` (e.g. ``chmod 000`` does not block reads for root).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

#: EXIF tag 0x0112; value 6 = "rotate 90 degrees clockwise to display".
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class OddImages:
    """``good``: valid but unusual files, each must be classified; ``bad``: each must be an error naming it.

    ``expected_shape`` gives the ``(H, W)`` a good file decodes to (EXIF orientation applied);
    ``skipped`` maps a case name to the reason it could not be made on this machine.
    """

    root: Path
    good: dict[str, Path]
    bad: dict[str, Path]
    expected_shape: dict[str, tuple[int, int]]
    skipped: dict[str, str] = field(default_factory=dict)
    unreadable: Path | None = None  # mode 000 (in ``bad`` too unless this process can read it anyway)

    def all_paths(self) -> list[Path]:
        return [*self.good.values(), *self.bad.values()]


def _gradient(h: int, w: int, seed: int = 0) -> np.ndarray:
    """``uint8[h, w, 3]`` BGR with a colour gradient and a disc, so every case is a real picture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    c = rng.integers(0, 256, size=(2, 3))
    t = ((xx / max(w - 1, 1) + yy / max(h - 1, 1)) / 2)[..., None]
    img = (c[0] * (1 - t) + c[1] * t).astype(np.uint8)
    cv2.circle(img, (w // 2, h // 2), max(1, min(h, w) // 4), (255, 255, 255), -1)
    return img


def _encode(suffix: str, image: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, buf = cv2.imencode(suffix, image, list(params))
    assert ok, suffix
    return buf.tobytes()


def exif_rotated_jpeg(width: int = 48, height: int = 24, orientation: int = 6) -> bytes:
    """A landscape JPEG (``height`` x ``width`` stored) whose EXIF says: rotate 90 degrees clockwise.

    The left third is blue and the rest red, so the test can check where the stripe ends up, not only the
    swapped shape. Written with Pillow (it writes the APP1/Exif segment for us).
    """
    from PIL import Image

    img = Image.new("RGB", (width, height), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, width // 3, height))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def _pillow_cases(put, good: dict[str, Path], expected: dict[str, tuple[int, int]],
                  skipped: dict[str, str]) -> None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is installed in the dev venv
        for case in ("cmyk_jpeg", "exif_rotated", "palette_png", "palette_transparent_png", "gray_alpha_png"):
            skipped[case] = "Pillow is not installed, so this file cannot be written here"
        return
    rgb = _gradient(20, 30, seed=5)[:, :, ::-1]

    def pil_bytes(img, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        return buf.getvalue()

    base = Image.fromarray(np.ascontiguousarray(rgb))
    good["cmyk_jpeg"] = put("cmyk.jpg", pil_bytes(base.convert("CMYK"), "JPEG", quality=95))
    expected["cmyk_jpeg"] = (20, 30)
    good["palette_png"] = put("palette.png", pil_bytes(base.convert("P"), "PNG"))
    expected["palette_png"] = (20, 30)
    palette_alpha = pil_bytes(base.convert("P"), "PNG", transparency=0)
    good["palette_transparent_png"] = put("palette_alpha.png", palette_alpha)
    expected["palette_transparent_png"] = (20, 30)
    good["gray_alpha_png"] = put("gray_alpha.png", pil_bytes(base.convert("LA"), "PNG"))
    expected["gray_alpha_png"] = (20, 30)
    good["exif_rotated"] = put("exif_rotated.jpg", exif_rotated_jpeg())
    expected["exif_rotated"] = (48, 24)  # stored 24x48, displayed (and decoded) 48x24


def build_corpus(root: Path) -> OddImages:
    """Write every case under ``root`` (created) and return where each one is."""
    root.mkdir(parents=True, exist_ok=True)
    good: dict[str, Path] = {}
    bad: dict[str, Path] = {}
    expected: dict[str, tuple[int, int]] = {}
    skipped: dict[str, str] = {}

    def put(name: str, data: bytes) -> Path:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    img = _gradient(40, 60)
    jpg, png = _encode(".jpg", img), _encode(".png", img)
    good["jpeg"] = put("plain.jpg", jpg)
    good["gray_png"] = put("gray.png", _encode(".png", cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)))
    good["gray_jpeg"] = put("gray.jpg", _encode(".jpg", cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)))
    good["rgba_png"] = put("rgba.png", _encode(".png", cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)))
    good["png16"] = put("deep16.png", _encode(".png", img.astype(np.uint16) * 257))
    gray16 = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    good["gray16_png"] = put("gray16.png", _encode(".png", gray16))
    good["png_named_jpg"] = put("really_a_png.jpg", png)
    good["one_pixel"] = put("one_pixel.png", _encode(".png", img[:1, :1]))
    good["unicode_path"] = put("dossier été/画像 with spaces ü.jpg", jpg)
    for key in good:
        expected[key] = (40, 60)
    expected["one_pixel"] = (1, 1)
    # 10000 x 10000: 100 Mpx, 300 MB once decoded to BGR. Grey JPEG keeps the file and the encode small.
    huge = np.full((10000, 10000), 128, np.uint8)
    huge[::100] = 0
    good["huge_10000"] = put("huge_10000x10000.jpg", _encode(".jpg", huge, (cv2.IMWRITE_JPEG_QUALITY, 30)))
    expected["huge_10000"] = (10000, 10000)
    # A 1 x 10000 banner: resize-then-crop at 224 px would build a 256 x 2.5M intermediate (2 GB).
    good["banner_1x10000"] = put("banner_1x10000.png", _encode(".png", cv2.resize(img, (10000, 1))))
    expected["banner_1x10000"] = (1, 10000)
    _pillow_cases(put, good, expected, skipped)

    bad["zero_bytes"] = put("empty.jpg", b"")
    bad["text_as_jpg"] = put("notes.jpg", b"this is a shopping list, not a picture\n" * 10)
    bad["truncated_jpeg"] = put("truncated.jpg", jpg[: len(jpg) // 2])
    bad["truncated_png"] = put("truncated.png", png[: len(png) // 2])
    bad["jpeg_header_only"] = put("header_only.jpg", jpg[:20])
    unreadable = put("unreadable.png", png)
    unreadable.chmod(0o000)
    if os.access(unreadable, os.R_OK):  # root (as in CI containers) reads anything: in-process test skipped
        skipped["unreadable"] = ("running as root: chmod 000 does not block reads (CAP_DAC_OVERRIDE); "
                                 "test_unreadable_file_for_a_process_without_dac_override covers it")
    else:
        bad["unreadable"] = unreadable
    return OddImages(root=root, good=good, bad=bad, expected_shape=expected, skipped=skipped,
                     unreadable=unreadable)


@pytest.fixture(scope="session")
def odd_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OddImages]:
    corpus = build_corpus(tmp_path_factory.mktemp("odd_images"))
    yield corpus
    for p in [*corpus.bad.values(), corpus.unreadable]:  # let pytest's tmp cleanup remove the chmod-000 file
        with contextlib.suppress(OSError):
            p.chmod(0o644)


# --- tiny file systems: full and read-only ----------------------------------------------------------------
@contextlib.contextmanager
def tmpfs(size: str, read_only: bool = False) -> Iterator[Path]:
    """Mount a private tmpfs of ``size`` (e.g. ``"256k"``) and unmount it afterwards; skips without root."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    where = Path("/tmp") / f"edgecls-reliability-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    opts = f"size={size},mode=0755" + (",ro" if read_only else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        with contextlib.suppress(OSError):
            where.rmdir()


@pytest.fixture
def full_disk() -> Iterator[Path]:
    """A writable directory on a 256 KiB file system: any real artifact fills it (ENOSPC)."""
    with tmpfs("256k") as d:
        yield d


@pytest.fixture
def read_only_dir() -> Iterator[Path]:
    """A directory on a read-only mount: even root gets EROFS (``chmod`` would not stop root)."""
    with tmpfs("64k", read_only=True) as d:
        yield d


# --- running edgecls ----------------------------------------------------------------------------------------
def edgecls_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def edgecls_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgecls", *args]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m edgecls ARGS`` to completion, text output captured."""
    return subprocess.run(edgecls_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env=edgecls_env(), cwd=REPO)


def jsonl(text: str) -> list[dict]:
    """Parse JSON Lines; any line that is not JSON fails the test (stdout must stay machine-readable)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_one_clean_error(stderr: str, *fragments: str) -> str:
    """stderr holds exactly one ``error: ...`` line (naming ``fragments``) and no traceback; returns it."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    for f in fragments:
        assert f in errors[0], (f, errors[0])
    return errors[0]


# --- catching a process at a precise moment -----------------------------------------------------------------
def is_temporary(name: str) -> bool:
    """The atomic writer's temporary names: hidden, ``.<target>.<pid>.<random>.tmp<suffix>``."""
    import re

    return re.match(r"^\..+\.\d+\.[^.]+\.tmp(\.[A-Za-z0-9]+)?$", name) is not None


def check_artifacts(folder: Path) -> dict[str, str]:
    """Open every visible file under ``folder`` with the reader for its type; return ``{relative: kind}``.

    Hidden names must be atomic-writer temporaries (never mistaken for artifacts: hidden and ``.tmp``);
    every visible ``.pt``/``.onnx``/``.json``/``.npz``/``.png``/``.csv`` must load completely.
    """
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_dir():
            continue
        rel = str(path.relative_to(folder))
        if path.name.startswith("."):
            assert is_temporary(path.name), rel
            found[rel] = "temporary"
            continue
        suffix = path.suffix
        if suffix == ".pt":
            from edgecls.training.checkpoint import load_checkpoint

            load_checkpoint(path)
        elif suffix == ".onnx":
            import onnx

            onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        elif suffix == ".json":
            json.loads(path.read_text())
        elif suffix == ".npz":
            with np.load(path) as z:
                [z[k] for k in z.files]
        elif suffix == ".png":
            assert cv2.imread(str(path)) is not None, rel
        elif suffix in (".csv", ".md"):
            path.read_text(encoding="utf-8")
        found[rel] = suffix
    return found
