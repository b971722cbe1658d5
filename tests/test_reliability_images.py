"""Odd and broken image files, end to end: the decoder, the Python API and ``edgecls run --json``.

Valid-but-unusual files (grey, RGBA, palette, 16-bit, CMYK, EXIF-rotated, 1x1, 10000x10000, unicode paths)
are classified; broken ones (empty, text, truncated) become one error row naming the file while the rest
of the run goes on; the exit status is 1 with a summary line, and no traceback ever reaches the user.
"""

from __future__ import annotations

import io
import subprocess

import cv2
import numpy as np
import pytest
from fixtures_reliability import OddImages, edgecls_cmd, edgecls_env, exif_rotated_jpeg, jsonl, run_cli

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import ImageDecodeError
from edgecls.runtime.images.decode import decode_bytes, decode_image
from edgecls.runtime.images.prescan.jpeg import walk_jpeg
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.inference.preprocess import preprocess, resize_to_contract
from edgecls.runtime.sources.image_batches import classify_files


def test_decoder_gives_bgr_uint8_for_every_valid_odd_file(odd_images: OddImages) -> None:
    for case, path in odd_images.good.items():
        image = decode_image(path, max_pixels=10**8)  # the 10000x10000 JPEG is over the default limit (40 Mpx)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, case
        assert image.shape[:2] == odd_images.expected_shape[case], case
        assert image.flags.c_contiguous, case


@pytest.mark.parametrize("case", ["zero_bytes", "text_as_jpg", "truncated_jpeg", "truncated_png",
                                  "jpeg_header_only", "unreadable"])
def test_decoder_names_every_broken_file(odd_images: OddImages, case: str) -> None:
    if case in odd_images.skipped:
        pytest.skip(odd_images.skipped[case])
    path = odd_images.bad[case]
    with pytest.raises(ImageDecodeError) as info:
        decode_image(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_colour_conversions_keep_the_picture(odd_images: OddImages) -> None:
    """Grey, 16-bit, alpha and CMYK variants decode to (nearly) the pixels of the plain image."""
    plain = decode_image(odd_images.root / "really_a_png.jpg").astype(int)  # lossless PNG bytes
    gray = cv2.cvtColor(plain.astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(int)
    assert np.array_equal(decode_image(odd_images.good["png16"]).astype(int), plain)  # 16-bit: >> 8, exact
    assert np.array_equal(decode_image(odd_images.good["rgba_png"]).astype(int), plain)  # alpha dropped
    for case in ("gray_png", "gray16_png"):
        out = decode_image(odd_images.good[case]).astype(int)
        assert np.array_equal(out[:, :, 0], gray) and np.array_equal(out[:, :, 0], out[:, :, 2]), case
    if "cmyk_jpeg" in odd_images.good:
        from PIL import Image

        pil = np.asarray(Image.open(odd_images.good["cmyk_jpeg"]).convert("RGB"))[:, :, ::-1].astype(int)
        assert np.abs(decode_image(odd_images.good["cmyk_jpeg"]).astype(int) - pil).mean() < 3  # not inverted


def test_exif_orientation_is_applied_like_pillow_does() -> None:
    """The decision: orientation IS applied (cv2.imdecode does it on bytes), as Pillow's exif_transpose."""
    pytest.importorskip("PIL")
    from PIL import Image, ImageOps

    data = exif_rotated_jpeg(width=48, height=24, orientation=6)
    ours = decode_bytes(data, "exif.jpg")
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))[:, :, ::-1]
    assert ours.shape == upright.shape == (48, 24, 3)
    assert np.abs(ours.astype(int) - upright.astype(int)).mean() < 3
    # Stored: blue stripe on the left; rotated 90 degrees clockwise it is the top band.
    assert ours[2, 12, 0] > 200 and ours[2, 12, 2] < 60  # top: blue (B channel high)
    assert ours[40, 12, 2] > 200 and ours[40, 12, 0] < 60  # bottom: red


def test_training_reads_the_same_upright_pixels(tmp_path) -> None:
    """Training's data layer decodes with the same function, so the orientation decision is shared."""
    pytest.importorskip("PIL")
    from edgecls.data.folders import load_image_folder

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "phone.jpg").write_bytes(exif_rotated_jpeg())
    images = load_image_folder(tmp_path)
    assert images.load(0).shape == (48, 24, 3)
    assert np.array_equal(images.load(0), decode_image(tmp_path / "a" / "phone.jpg"))


def test_jpeg_with_data_after_the_image_is_not_called_truncated() -> None:
    """Phone "motion photos" append an MP4 after the JPEG's end marker: still a complete picture."""
    img = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    jpg = buf.tobytes()
    appended = jpg + b"\x00\x00\x00\x18ftypmp42" + bytes(20000)
    assert decode_bytes(appended, "motion.jpg").shape == (32, 48, 3)
    for cut in (len(jpg) // 3, len(jpg) // 2, len(jpg) - 2):
        assert walk_jpeg(jpg[:cut], "cut.jpg", 100, 10**9).truncated
        with pytest.raises(ImageDecodeError, match="cut.jpg: truncated JPEG"):
            decode_bytes(jpg[:cut], "cut.jpg")


def test_extreme_aspect_ratio_preprocesses_in_bounded_memory(odd_images: OddImages) -> None:
    """The 1 x 10000 banner at 224 px, centre crop: a few MB of allocations, not the 2 GB intermediate."""
    import tracemalloc

    banner = decode_image(odd_images.good["banner_1x10000"])
    contract = ModelContract(labels=("a", "b"), input_size=(224, 224), resize_mode="shorter_side_crop")
    tracemalloc.start()
    try:
        out = preprocess(banner, contract)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (3, 224, 224) and np.isfinite(out).all()
    assert peak < 50e6, peak
    # Ordinary aspect ratios keep the exact resize-then-crop convention.
    photo = decode_image(odd_images.good["jpeg"])  # 40 x 60
    c = contract.replace(input_size=(32, 32))
    ref = cv2.resize(photo, (55, 37), interpolation=cv2.INTER_LINEAR)[2:34, 11:43]  # 32/0.875 = 36.6 -> 37
    assert np.array_equal(resize_to_contract(photo, c), ref)


def test_python_api_classifies_good_and_names_bad(runtime_models, odd_images: OddImages) -> None:
    clf = Classifier(runtime_models.cnn)
    paths = [str(p) for p in odd_images.all_paths()]
    results = list(classify_files(clf, paths, top_k=2, batch_size=4, workers=2))
    assert [r.source for r in results] == paths  # every input once, in order: the run went on
    huge = str(odd_images.good["huge_10000"])  # 100 Mpx: over the default pixel limit, named as such
    good = {str(p) for p in odd_images.good.values()} - {huge}
    for r in results:
        if r.source == huge:
            assert r.error == f"{huge}: image is 10000x10000 = 100000000 pixels; the limit is 40000000 (--max-pixels)"
        elif r.source in good:
            assert r.error is None and r.predictions and len(r.predictions) == 2, r
            assert abs(sum(p.score for p in clf.predict(r.source, top_k=3)) - 1) < 1e-4
        else:
            assert r.predictions is None and r.error.startswith(r.source), r
    for path in odd_images.bad.values():
        with pytest.raises(ImageDecodeError, match="^" + str(path).replace("\\", "\\\\")):
            clf.predict(path)


def test_cli_json_one_row_per_file_and_exit_1(runtime_models, odd_images: OddImages) -> None:
    paths = [str(p) for p in odd_images.all_paths()]
    # --max-pixels lets the 10000x10000 JPEG through (the default, 40 Mpx, refuses it: see the test above)
    r = run_cli("run", str(runtime_models.cnn), *paths, "--json", "--top-k", "2", "--decode-threads", "2",
                "--max-pixels", "100000000")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    rows = jsonl(r.stdout)
    assert [row["source"] for row in rows] == paths
    for row in rows:
        if row["source"] in {str(p) for p in odd_images.bad.values()}:
            assert row["error"].startswith(row["source"]) and "\n" not in row["error"], row
        else:
            assert "error" not in row and len(row["top_k"]) == 2, row
    *notes, summary = r.stderr.strip().splitlines()
    n_bad = len(odd_images.bad)
    assert f"{len(paths) - n_bad} result(s), {n_bad} error(s)" in summary, summary
    # stderr: exactly one line per broken file, nothing else (no decoder chatter like "libpng error").
    assert notes == [f"error: {row['error']}" for row in rows if "error" in row], notes


def test_cli_folder_walk_reaches_unicode_names(runtime_models, odd_images: OddImages) -> None:
    """A folder argument finds the file under ``dossier été/`` with spaces and CJK in its name."""
    r = run_cli("run", str(runtime_models.cnn), str(odd_images.root), "--json")
    rows = {row["source"]: row for row in jsonl(r.stdout)}
    unicode_file = str(odd_images.good["unicode_path"])
    assert unicode_file in rows and "top_k" in rows[unicode_file]
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_cli_all_good_exits_zero(runtime_models, odd_images: OddImages) -> None:
    small = [str(p) for k, p in odd_images.good.items() if k != "huge_10000"]
    proc = subprocess.run(edgecls_cmd("run", str(runtime_models.cnn), *small, "--json"), capture_output=True,
                          text=True, timeout=60, env=edgecls_env())
    assert proc.returncode == 0, proc.stderr
    assert len(jsonl(proc.stdout)) == len(small)
    assert "0 error(s)" in proc.stderr


def test_unreadable_file_for_a_process_without_dac_override(runtime_models, odd_images: OddImages) -> None:
    """As root, drop CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH for one ``edgecls run`` so mode 000 really blocks."""
    import os
    import shutil

    if os.geteuid() != 0:
        pytest.skip("not root: the in-process tests already cover the mode-000 file")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop the capabilities that let root read anything")
    locked, ok = str(odd_images.unreadable), str(odd_images.good["jpeg"])
    cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
           *edgecls_cmd("run", str(runtime_models.cnn), ok, locked, "--json")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=edgecls_env())
    assert r.returncode == 1, r.stderr
    rows = jsonl(r.stdout)
    assert rows[0]["source"] == ok and "top_k" in rows[0]
    assert rows[1] == {"source": locked, "error": f"{locked}: permission denied"}
    assert "Traceback" not in r.stderr
