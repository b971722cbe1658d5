"""The decoder bounds its work before decoding (issue #20): scan bombs, float formats, OpenCV's internals.

The same :func:`edgecls.runtime.images.decode.decode_bytes` serves ``run``, ``batch``, ``serve`` and training, so a
scan bomb in a folder is an error row in ``edgecls run`` as in ``serve`` a 413.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from fixtures_attacks import progressive_jpeg, scan_bomb
from fixtures_reliability import jsonl, run_cli

from edgecls.runtime.errors import ImageDecodeError, ImageTooCostlyError
from edgecls.runtime.images.decode import decode_bytes
from edgecls.runtime.images.prescan.jpeg import walk_jpeg


def scans(data: bytes) -> int:
    return walk_jpeg(data, "x.jpg", 1000, 10**9).scans


def test_a_scan_bomb_is_refused_before_decoding(monkeypatch):
    # "Before decoding" observed, not timed: OpenCV's decoder is never called for it (a clock bound on the refusal
    # measured the box's load as much as the code).
    decoded: list[int] = []
    imdecode = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda buf, flags: decoded.append(len(buf)) or imdecode(buf, flags))
    bomb = scan_bomb(6000, 5000)  # 440 KB; 3.6 s of libjpeg time when decoded
    with pytest.raises(ImageTooCostlyError, match=r"^bomb\.jpg: JPEG has more than 100 scans"):
        decode_bytes(bomb, "bomb.jpg", (224, 224))
    assert decoded == []
    # The limit is the caller's: let through, it decodes (slowly), so refusing it is the limit's doing.
    small = scan_bomb(64, 150)
    with pytest.raises(ImageTooCostlyError):
        decode_bytes(small, "small.jpg")
    assert decoded == []
    assert decode_bytes(small, "small.jpg", max_jpeg_scans=1000).shape == (64, 64, 3)
    assert decoded == [len(small)]  # the spy does see a decode


def test_scans_are_counted_as_libjpeg_reads_them():
    progressive = progressive_jpeg(256)
    assert scans(progressive) == 10  # libjpeg's default progression
    assert scans(cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))[1].tobytes()) == 1
    # A motion photo: data after the end marker (here full of FF DA pairs) is not libjpeg's and not counted.
    tail = progressive + b"\xff\xda\x00\x08" * 500
    assert scans(tail) == 10
    assert decode_bytes(tail, "motion.jpg").shape == (256, 256, 3)
    # Bytes that are not a marker between segments are skipped to the next marker, as libjpeg does.
    eoi = progressive.rindex(b"\xff\xd9")
    junk = progressive[:eoi] + b"junk" + progressive[eoi:]
    assert scans(junk) == 10


def test_float_formats_are_refused_instead_of_decoding_nearly_black():
    light = np.full((20, 30, 3), 0.5, np.float32)
    for ext in (".pfm", ".hdr"):
        data = cv2.imencode(ext, light)[1].tobytes()
        with pytest.raises(ImageDecodeError, match=r"^light: .* floating-point"):
            decode_bytes(data, "light")


def test_opencv_internals_never_reach_the_message():
    # A PAM header declaring 40000x40000: over OpenCV's default pixel ceiling (2^30), which it asserts.
    pam = b"P7\nWIDTH 40000\nHEIGHT 40000\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + b"\0" * 64
    with pytest.raises(ImageDecodeError) as e:
        decode_bytes(pam, "big.pam")
    message = str(e.value)
    assert message.startswith("big.pam: ") and "\n" not in message
    assert not any(s in message for s in ("OpenCV", ".cpp", "/io/", "Assertion", "-215")), message


def test_run_names_a_scan_bomb_in_a_folder_and_classifies_the_rest(colour_model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bomb.jpg").write_bytes(scan_bomb(6000, 5000))
    cv2.imwrite(str(folder / "red.jpg"), np.full((48, 64, 3), (0, 0, 200), np.uint8))
    r = run_cli("run", str(colour_model), str(folder), "--json")
    rows = {row["source"].rsplit("/", 1)[-1]: row for row in jsonl(r.stdout)}
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "more than 100 scans" in rows["bomb.jpg"]["error"]
    assert rows["red.jpg"]["top_k"][0]["label"] == "red"
