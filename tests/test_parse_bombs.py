"""Parse-cost bombs (issue #30, items 4-6), refused before any decoder walks them: by the decoder every reader shares,
by ``edgecls serve`` (413 ``too_costly``), ``run`` and ``batch`` (error rows) and the training and calibration
readers (skipped files); the declared-pixel limit the same everywhere; real photos still read.

Each bomb is twice over its limit (tests/fixtures_attacks.PARSE_BOMBS). Before the pre-scan, every one of them was
decoded (and served 200): header parsers walked every chunk, segment and fill byte, and libtiff inflated whatever
tile size a file declared.
"""

from __future__ import annotations

import functools
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_attacks import (
    PARSE_BOMBS,
    png_chunk,
    png_of_zeros,
    progressive_jpeg,
    scan_bomb,
    tiff_tile_bomb,
    tiff_with_strip_rows,
)
from fixtures_folders import watch, watch_argv
from fixtures_reliability import exif_rotated_jpeg, jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecls.runtime.errors import ImageDecodeError
from edgecls.runtime.images.decode import decode_bytes

# 64 Mpx, 190 KB: decodes to 192 MB (the 20000 x 20000 one, 1.17 MB, took `run` 2.48 GB and 11.5 s).
PIXEL_LIMIT = "image is 8000x8000 = 64000000 pixels; the limit is 40000000 (--max-pixels)"
# Words each refusal uses, so the tests below tell a bounded refusal from any other decode failure.
COSTLY = ("(a parser work bomb?)", "(a decompression bomb?)", "(comments?)")


@functools.cache
def bombs() -> dict[str, bytes]:
    """Every parse bomb and the pixel bomb (``big.png``), built once per session, on first use."""
    return {**{name: build() for name, build in PARSE_BOMBS.items()}, "big.png": png_of_zeros(8000, 8000)}


def _is_costly(message: str) -> bool:
    return any(words in message for words in COSTLY)


@pytest.mark.parametrize("name", sorted(PARSE_BOMBS))
def test_each_bomb_is_refused_before_decoding_naming_the_file_and_its_limit(name: str):
    with pytest.raises(ImageDecodeError) as refused:
        decode_bytes(bombs()[name], name)
    message = str(refused.value)
    assert type(refused.value).__name__ == "ImageTooCostlyError" and message.startswith(f"{name}: "), message
    assert _is_costly(message) and "\n" not in message, message


def test_a_junk_byte_between_header_segments_no_longer_hides_a_scan_bomb():
    """libjpeg skips junk between segments with a warning; the old header walk gave up there and skipped the scan
    limit, so this 2000-scan bomb was decoded."""
    bomb = scan_bomb(2000, 2000)
    tables = bomb.index(b"\xff\xdb")
    with pytest.raises(ImageDecodeError, match=r"^hidden\.jpg: JPEG has more than 100 scans"):
        decode_bytes(bomb[:tables] + b"\x00\x00" + bomb[tables:], "hidden.jpg")


def test_tiles_and_strips_that_are_legal_for_a_small_image_are_read():
    """A tile may be larger than a small image (libtiff's and GDAL's 256x256 defaults), up to 2048x2048; a strip
    may declare more rows than the image has (libtiff decodes only the image's rows)."""
    assert decode_bytes(tiff_tile_bomb(256), "tiled.tif").shape == (16, 16, 3)
    assert decode_bytes(tiff_with_strip_rows(1_000_000), "strips.tif").shape == (16, 16, 3)


def test_the_pixel_limit_is_the_decoders_and_names_the_flag():
    with pytest.raises(ImageDecodeError) as refused:
        decode_bytes(bombs()["big.png"], "big.png")
    assert str(refused.value) == f"big.png: {PIXEL_LIMIT}"
    photo = cv2.imencode(".png", np.zeros((48, 64, 3), np.uint8))[1].tobytes()
    with pytest.raises(ImageDecodeError, match=r"^small\.png: image is 64x48 = 3072 pixels; the limit is 3000"):
        decode_bytes(photo, "small.png", max_pixels=3000)


# --- real photos are not refused ----------------------------------------------------------------------------


def _pil(image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def _extended_xmp(jpeg: bytes, segments: int) -> bytes:
    """``jpeg`` with ``segments`` extended-XMP APP1 segments of 65,000 bytes after SOI, as phones store depth maps."""
    guid = b"0123456789ABCDEF0123456789ABCDEF"
    body = b"http://ns.adobe.com/xmp/extension/\0" + guid + (segments * 65000).to_bytes(4, "big")
    parts = [body + (i * 65000).to_bytes(4, "big") + bytes(65000) for i in range(segments)]
    return jpeg[:2] + b"".join(b"\xff\xe1" + (len(p) + 2).to_bytes(2, "big") + p for p in parts) + jpeg[2:]


def real_images() -> dict[str, bytes]:
    """scikit-image's sample photos as shipped, and photos saved the way cameras, phones and editors save them."""
    import skimage
    from PIL import Image, ImageCms, PngImagePlugin

    data = Path(skimage.__file__).parent / "data"
    files = {p.name: p.read_bytes() for p in sorted(data.iterdir()) if p.suffix in (".png", ".jpg", ".gif", ".tif")}
    photo = Image.open(data / "astronaut.png").convert("RGB")
    exif = Image.Exif()
    exif.update({0x010F: "Phone maker", 0x0110: "Phone 15", 0x0112: 1, 0x0131: "camera app 2.1"})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>' * 200
    phone = _pil(photo, "JPEG", quality=90, exif=exif, icc_profile=icc * 40, xmp=xmp, comment=b"from a phone")
    text = PngImagePlugin.PngInfo()
    for i in range(200):
        text.add_text(f"key{i}", "value " * 20, zip=i % 2 == 0)
    frames = [photo.resize((64, 64)).rotate(6 * i) for i in range(60)]
    return {
        **files,
        "exif_rotated.jpg": exif_rotated_jpeg(),
        "progressive.jpg": progressive_jpeg(256),
        "progressive_photo.jpg": _pil(photo, "JPEG", progressive=True, optimize=True, quality=85),
        "phone_exif_icc_xmp.jpg": phone,
        "depth_map_extended_xmp.jpg": _extended_xmp(phone, 80),
        "text_chunks.png": _pil(photo, "PNG", pnginfo=text, icc_profile=icc, exif=exif),
        "animated.png": _pil(frames[0], "PNG", save_all=True, append_images=frames[1:]),
        "animated.gif": _pil(frames[0], "GIF", save_all=True, append_images=frames[1:], comment=b"hello", loop=0),
        "animated.webp": _pil(frames[0], "WEBP", save_all=True, append_images=frames[1:], exif=exif, icc_profile=icc),
        "deflate.tif": _pil(photo, "TIFF", compression="tiff_deflate"),
        "photo.bmp": cv2.imencode(".bmp", np.asarray(photo))[1].tobytes(),
        "photo.ppm": b"P6\n# CREATOR: GIMP PNM Filter Version 1.1\n" + cv2.imencode(".ppm", np.asarray(photo))[1]
        .tobytes()[3:],
    }


def test_real_photos_and_their_metadata_pass_the_prescan_with_the_size_pillow_reads():
    from PIL import Image

    from edgecls.runtime.images.prescan.scan import prescan

    images = real_images()
    assert len(images) > 30
    compared = 0
    for name, data in images.items():
        declared = prescan(data, name)
        if name == "multipage_rgb.tif":  # 64-bit samples: Pillow (and OpenCV) cannot read it, the pre-scan passes it
            continue
        with Image.open(io.BytesIO(data)) as im:
            assert (declared.width, declared.height) == im.size, name
        compared += 1
    assert compared == len(images) - 1
    assert decode_bytes(images["depth_map_extended_xmp.jpg"], "depth.jpg").shape == (512, 512, 3)


# --- the pre-scan never fails in any other way ----------------------------------------------------------------

@functools.cache
def _seeds() -> list[bytes]:
    return [*(data[:4096] for data in bombs().values()), tiff_with_strip_rows(64), progressive_jpeg(32),
            png_chunk(b"IHDR") * 3, b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x21\xfe\x05abc",
            b"RIFF\xff\xff\xff\xffWEBPVP8X", b"II*\x00\x08\x00\x00\x00\xff\xff", b"P6 # only a comment"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    seeds = _seeds()
    data = bytearray(seeds[draw(st.integers(0, len(seeds) - 1))])
    for _ in range(draw(st.integers(1, 5))):
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@settings(max_examples=int(os.environ.get("EDGECLS_FUZZ_EXAMPLES", "300")), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.one_of(st.binary(max_size=512), mutated()))
def test_the_prescan_reads_a_size_or_refuses_in_one_line(data: bytes):
    from edgecls.runtime.images.prescan.scan import prescan

    try:
        declared = prescan(data, "fuzz.bin")
    except ImageDecodeError as e:
        assert str(e).startswith("fuzz.bin: ") and "\n" not in str(e), str(e)
    else:
        assert declared.width >= 1 and declared.height >= 1 and declared.width * declared.height <= 40_000_000


# --- every reader: serve, run, batch, training and calibration -----------------------------------------------


def test_serve_answers_413_too_costly_for_each_bomb_and_still_serves_photos(colour_model, serve_process):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("starlette")
    server = serve_process(str(colour_model), "--decode-threads", "1")
    octets = {"Content-Type": "application/octet-stream"}
    with server.client() as c:
        replies = {name: c.post("/v1/classify", content=data, headers=octets, params={"name": name})
                   for name, data in bombs().items()}
        red = cv2.imencode(".jpg", np.full((480, 640, 3), (0, 0, 200), np.uint8))[1].tobytes()
        good = c.post("/v1/classify", content=red, headers={"Content-Type": "image/jpeg"})
    assert isinstance(good, httpx.Response) and good.status_code == 200, good.text
    assert good.json()["top_k"][0]["label"] == "red"
    for name, r in replies.items():
        assert r.status_code == 413, (name, r.status_code, r.text)
        body = r.json()
        expected = "too_many_pixels" if name == "big.png" else "too_costly"
        assert body["kind"] == expected and body["error"].startswith(f"{name}: "), body
    assert replies["big.png"].json()["error"] == f"big.png: {PIXEL_LIMIT}"


# Folder walks take image suffixes, and .gif is not one (run, batch and training skip GIFs); a GIF named .png is
# read all the same, by its content: that is how the GIF bomb reaches them.
ON_DISK = {name: name.replace(".gif", "_gif.png") for name in [*PARSE_BOMBS, "big.png"]}


@pytest.fixture(scope="module")
def bomb_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every bomb, a 400 Mpx pixel bomb and one real red picture, as files in a folder another program fills."""
    folder = tmp_path_factory.mktemp("drop")
    for name, data in bombs().items():
        (folder / ON_DISK[name]).write_bytes(data)
    cv2.imwrite(str(folder / "red.jpg"), np.full((48, 64, 3), (0, 0, 200), np.uint8))
    return folder


def _errors(rows: list[dict]) -> dict[str, str]:
    return {Path(r["source"]).name: r["error"] for r in rows if "error" in r}


def _assert_bomb_rows(rows: list[dict], folder: Path, pixel_limit: str = PIXEL_LIMIT) -> None:
    errors = _errors(rows)
    assert set(errors) == set(ON_DISK.values()), errors
    for name, message in errors.items():
        assert message.startswith(str(folder / name) + ": "), message
        assert message.endswith(pixel_limit) if name == "big.png" else _is_costly(message), message
    classified = [r for r in rows if "top_k" in r]
    assert [Path(r["source"]).name for r in classified] == ["red.jpg"]
    assert classified[0]["top_k"][0]["label"] == "red"


def test_run_makes_each_bomb_an_error_row_and_classifies_the_rest(colour_model, bomb_folder: Path):
    got = watch("run", str(colour_model), str(bomb_folder), "--json", timeout=60, rss_limit_mb=500)
    assert got.killed is None and got.returncode == 1 and "Traceback" not in got.stderr, (got.killed, got.stderr)
    _assert_bomb_rows(jsonl(got.stdout), bomb_folder)
    # The flag is run's: a limit under the red picture's 3,072 pixels makes it an error row too.
    capped = watch("run", str(colour_model), str(bomb_folder / "red.jpg"), "--json", "--max-pixels", "3000")
    (row,) = jsonl(capped.stdout)
    assert capped.returncode == 1 and row["error"].endswith("3072 pixels; the limit is 3000 (--max-pixels)"), row


def test_batch_makes_each_bomb_an_error_row_and_takes_the_same_flag(colour_model, bomb_folder: Path, tmp_path: Path):
    pytest.importorskip("pyarrow")
    got = watch("batch", str(colour_model), str(bomb_folder), "--out", str(tmp_path / "table"), "--jsonl",
                "--max-pixels", "50000000", timeout=60)
    assert got.killed is None and got.returncode == 1 and "Traceback" not in got.stderr, (got.killed, got.stderr)
    limit = "image is 8000x8000 = 64000000 pixels; the limit is 50000000 (--max-pixels)"
    _assert_bomb_rows(jsonl((tmp_path / "table.jsonl").read_text()), bomb_folder, limit)


def test_batch_watch_applies_the_same_limits_to_arriving_files(colour_model, bomb_folder: Path, tmp_path: Path):
    """A watched folder is the folder another program fills: the watch builds its own loop options, and once
    left the pixel limit out of them."""
    pq = pytest.importorskip("pyarrow.parquet")
    drop, out = tmp_path / "drop", tmp_path / "table"
    drop.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "edgecls", "batch", str(colour_model), str(drop), "--out", str(out),
                             "--watch", "--settle", "0.2", "--max-pixels", "50000000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def rows() -> list[dict]:
        try:
            return pq.read_table(out).to_pylist()
        except (OSError, ValueError):  # no part committed yet
            return []

    try:
        for path in bomb_folder.iterdir():
            (drop / path.name).write_bytes(path.read_bytes())
        deadline = time.monotonic() + 60
        while len(rows()) < len(ON_DISK) + 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert "Traceback" not in stderr, stderr
    limit = "image is 8000x8000 = 64000000 pixels; the limit is 50000000 (--max-pixels)"
    _assert_bomb_rows([{k: v for k, v in r.items() if v is not None} for r in rows()], drop, limit)


_TRAINING_READERS = """
import sys
from pathlib import Path
from edgecls.data.folders import load_image_folder
from edgecls.export.quant.grading.image_sets import load_role_images
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import ImageDecodeError

root = Path(sys.argv[1])
training = load_image_folder(root)
for i in range(len(training)):
    try:
        training.load(i)
        print("read", Path(training.name(i)).name)
    except ImageDecodeError as e:
        print("refused", Path(training.name(i)).name, type(e).__name__, e)
images = load_role_images(str(root), ModelContract(labels=("bombs", "photos"), input_size=(32, 32)), "calibration")
print("calibration", len(images), len(images.skipped))
"""


def test_training_and_calibration_readers_skip_each_bomb(bomb_folder: Path, tmp_path: Path):
    """train, quantize, eval and bench read folders through the same decoder: each bomb is a skipped file.

    In a watched process of its own, so that a regression decoding the tile bomb cannot exhaust the test runner."""
    root = tmp_path / "data"
    (root / "bombs").mkdir(parents=True)
    (root / "photos").mkdir()
    for path in bomb_folder.iterdir():
        (root / ("photos" if path.name == "red.jpg" else "bombs") / path.name).write_bytes(path.read_bytes())
    got = watch_argv([sys.executable, "-c", _TRAINING_READERS, str(root)], timeout=60)
    assert got.killed is None and got.returncode == 0, (got.killed, got.stderr[-2000:])
    lines = got.stdout.splitlines()
    refused = {line.split()[1]: line for line in lines if line.startswith("refused")}
    assert set(refused) == set(ON_DISK.values()), lines
    assert all(("TooManyPixelsError" if name == "big.png" else "ImageTooCostlyError") in line
               for name, line in refused.items()), refused
    assert [line for line in lines if line.startswith("read")] == ["read red.jpg"]
    assert lines[-1] == f"calibration 1 {len(ON_DISK)}"
