"""Raspberry Pi cameras: ``--camera pi:N`` and ``--camera N`` on a Pi through Picamera2, against a stand-in module
with Picamera2's documented behaviour (tests/standins/picamera2.py: frames from a real image, RGB888 laid out
B, G, R), and ``selftest --camera``. No real camera is involved anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_runtime import REPO, golden_images

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.sources import picamera
from edgecls.runtime.sources.cameras import v4l2_node_problem
from edgecls.runtime.sources.live_capture import CaptureSettings, FrameSource
from edgecls.runtime.sources.source_specs import camera_source, parse_camera, picamera_source

STANDINS = Path(__file__).with_name("standins")


@pytest.fixture
def camera_image(tmp_path: Path) -> Path:
    """A 640x480 colour picture (the stand-in's frames are this file, at the size edgecls configures)."""
    image = cv2.resize(golden_images(1, seed=5)[0], (640, 480), interpolation=cv2.INTER_NEAREST)
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def standin_env(camera_image: Path, tmp_path: Path) -> dict[str, str]:
    """Environment of a subprocess that imports the stand-in as ``picamera2``; calls are logged to calls.txt."""
    return {**os.environ, "PYTHONPATH": str(STANDINS), "EDGECLS_STANDIN_PICAMERA2_IMAGE": str(camera_image),
            "EDGECLS_STANDIN_PICAMERA2_CALLS": str(tmp_path / "calls.txt")}


@pytest.fixture
def standin_here(monkeypatch: pytest.MonkeyPatch, camera_image: Path, tmp_path: Path) -> Path:
    """The stand-in importable in this process for one test; returns the file its calls are logged to."""
    monkeypatch.syspath_prepend(str(STANDINS))
    monkeypatch.setenv("EDGECLS_STANDIN_PICAMERA2_IMAGE", str(camera_image))
    monkeypatch.setenv("EDGECLS_STANDIN_PICAMERA2_CALLS", str(tmp_path / "calls.txt"))
    picamera.picamera2_module.cache_clear()
    yield tmp_path / "calls.txt"
    sys.modules.pop("picamera2", None)
    picamera.picamera2_module.cache_clear()


def edgecls(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgecls", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO)


def rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def drain(src: FrameSource, count: int, timeout: float = 15.0) -> list:
    frames: list = []
    deadline = time.monotonic() + timeout
    while len(frames) < count and not src.finished and time.monotonic() < deadline:
        frames += src.take()
        src.wakeup.wait(0.05)
        src.wakeup.clear()
    src.stop()
    return frames


def test_camera_spellings():
    assert parse_camera("0") == camera_source(0) and parse_camera(2) == camera_source(2)
    assert parse_camera("/dev/video3") == camera_source(3)
    pi = parse_camera("pi:1")
    assert pi == picamera_source(1) and pi.picamera and pi.camera_index == 1 and pi.name == "pi:1" and pi.live
    assert not camera_source(1).picamera
    for bad in ("usb0", "pi:", "pi:x", "-1", "cam:0"):
        with pytest.raises(EdgeclsError, match="expected N"):
            parse_camera(bad)


def test_bad_camera_value_is_one_error_line(runtime_models):
    r = edgecls("run", str(runtime_models.cnn), "--camera", "usb0")
    assert r.returncode == 2 and r.stderr.strip().startswith("error: --camera usb0: expected N")
    assert "Traceback" not in r.stderr


def test_which_v4l2_nodes_belong_to_the_pi_camera_pipeline(tmp_path):
    """The Pi 5's CSI receiver nodes (rp1-cfe-*) and the other libcamera nodes are not cameras OpenCV reads; a
    USB camera's node is; a missing node is said to be missing."""
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    names = {0: "rp1-cfe-csi2_ch0", 1: "unicam-image", 2: "HD USB Camera: HD USB Camera", 3: "pispbe-output0"}
    for index, name in names.items():
        (dev).mkdir(exist_ok=True)
        (dev / f"video{index}").touch()
        (sysfs / f"video{index}").mkdir(parents=True)
        (sysfs / f"video{index}" / "name").write_text(name + "\n")
    (dev / "video4").touch()  # a node without a sysfs entry: taken as a camera
    pi5 = v4l2_node_problem(0, dev, sysfs)
    assert "camera pipeline" in pi5 and "'rp1-cfe-csi2_ch0'" in pi5
    assert "camera pipeline" in v4l2_node_problem(1, dev, sysfs)
    assert "camera pipeline" in v4l2_node_problem(3, dev, sysfs)
    assert v4l2_node_problem(2, dev, sysfs) is None
    assert v4l2_node_problem(4, dev, sysfs) is None
    assert "does not exist" in v4l2_node_problem(5, dev, sysfs)


def test_pi_camera_is_classified_like_the_same_picture_from_a_file(runtime_models, camera_image, standin_env,
                                                                   tmp_path):
    """``run --camera pi:0`` gives, for each frame, exactly the scores ``run`` gives the picture the frames show:
    RGB888's B, G, R bytes went to preprocessing as BGR. The same picture with red and blue swapped scores
    differently, so a colour mix-up would fail here."""
    model = str(runtime_models.cnn)
    r = edgecls("run", model, "--camera", "pi:0", "--max-frames", "3", "--json", env=standin_env)
    assert r.returncode == 0, r.stderr
    frames = rows(r.stdout)
    assert [f["source"] for f in frames] == ["pi:0"] * 3 and all("frame" in f for f in frames)
    clf = Classifier(model)
    want = [p.to_dict() for p in clf.predict(str(camera_image), top_k=3)]  # what `run scene.png` prints
    assert all(f["top_k"] == want for f in frames)
    swapped = cv2.imread(str(camera_image))[:, :, ::-1]
    assert [p.to_dict() for p in clf.predict(swapped, top_k=3)] != want
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert calls[:4] == ["Picamera2(0)", "create_video_configuration(main={'format': 'RGB888', 'size': (640, 480)})",
                         "configure", "start"]
    assert calls[-2:] == ["stop", "close"]


def test_missing_pi_camera_fails_at_once(runtime_models, standin_here):
    from typer.testing import CliRunner

    from edgecls.cli import app

    t0 = time.monotonic()
    r = CliRunner().invoke(app, ["run", str(runtime_models.cnn), "--camera", "pi:3", "--retries", "5", "--json"])
    assert r.exit_code == 1 and "pi:3: no such camera" in r.stdout, r.output
    assert "reconnecting" not in r.output and time.monotonic() - t0 < 20


def test_missing_picamera2_is_one_error_row_saying_how_to_install_it(runtime_models):
    from typer.testing import CliRunner

    from edgecls.cli import app

    picamera.picamera2_module.cache_clear()  # nothing puts the stand-in on the path here
    r = CliRunner().invoke(app, ["run", str(runtime_models.cnn), "--camera", "pi:0", "--json"])
    err = rows(r.stdout)[0]["error"]
    assert r.exit_code == 1 and "picamera2 does not import" in err and "python3-picamera2" in err
    assert "--system-site-packages" in err


def test_stalled_pi_camera_is_closed_and_reopened(standin_here, monkeypatch):
    """A camera that stops delivering (capture_array times out) is flushed, stopped and closed, then opened
    again: the second Picamera2(0) would fail if the first still held the camera."""
    monkeypatch.setenv("EDGECLS_STANDIN_PICAMERA2_STALL_AFTER", "4")
    events: list[str] = []
    settings = CaptureSettings(retries=3, backoff=0.05, read_timeout=0.3, open_timeout=1.0)
    src = FrameSource(picamera_source(0), settings, on_event=lambda s, m: events.append(m)).start()
    frames = drain(src, 7)
    assert len(frames) >= 7 and src.reconnects >= 1 and src.error is None, (events, src.error)
    assert all(f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    assert "pi:0: no frame (TimeoutError" in events[0]
    calls = standin_here.read_text().splitlines()
    second_open = calls.index("Picamera2(0)", 1)
    assert calls[second_open - 3 : second_open] == ["cancel_all_and_flush", "stop", "close"]


def test_camera_0_without_a_v4l2_node_reads_picamera2_and_says_so(standin_here):
    if Path("/dev/video0").exists():
        pytest.skip("this machine has a /dev/video0")
    events: list[str] = []
    src = FrameSource(camera_source(0), CaptureSettings(retries=0), on_event=lambda s, m: events.append(m)).start()
    frames = drain(src, 3)
    assert len(frames) >= 3 and src.error is None
    assert events == ["camera:0: /dev/video0 does not exist; reading Picamera2 camera 0 instead (--camera pi:0)"]


def test_selftest_camera_reports_size_and_rate(standin_here, monkeypatch):
    from typer.testing import CliRunner

    from edgecls.cli import app

    r = CliRunner().invoke(app, ["selftest", "--camera", "pi:0", "--frames", "15"])
    assert r.exit_code == 0, r.output
    # At least 15: the newest-frame slot may skip one between two takes, and the count says what was read.
    assert r.stdout.startswith("pi:0: 1") and " frame(s) of 640x480 in " in r.stdout and "fps)" in r.stdout
    assert int(r.stdout.split()[1]) >= 15
    monkeypatch.setenv("EDGECLS_STANDIN_PICAMERA2_FPS", "20")
    r = CliRunner().invoke(app, ["selftest", "--camera", "pi:0", "--frames", "11", "--json"])
    report = json.loads(r.stdout)
    assert report["frames"] >= 11 and (report["width"], report["height"]) == (640, 480) and report["error"] is None
    assert 15 < report["fps"] < 21  # the camera's rate (20 fps), measured from the frames' capture times
    r = CliRunner().invoke(app, ["selftest", "--camera", "pi:1", "--frames", "5", "--json"])
    assert r.exit_code == 1 and "no such camera" in json.loads(r.stdout)["error"]


# --- the rpicam-vid route: an H.264 stream on tcp:// read through FFmpeg ---------------------------------------
@pytest.mark.slow
@pytest.mark.stream
def test_h264_tcp_stream_is_classified_like_its_picture(runtime_models, camera_image, h264_tcp_server):
    """What ``rpicam-vid -n -t 0 --inline --listen -o tcp://127.0.0.1:8888`` serves, from ffmpeg on loopback:
    ``run tcp://...`` classifies its frames, and each frame's scores are those of the picture it carries (H.264 at
    4:2:0 moves the scores a little: within 0.02, same order)."""
    model = str(runtime_models.cnn)
    server = h264_tcp_server(camera_image)
    r = edgecls("run", model, server.url, "--max-frames", "5", "--json")
    assert r.returncode == 0, r.stderr
    frames = rows(r.stdout)
    assert len(frames) == 5 and {f["source"] for f in frames} == {server.url}
    want = [p.to_dict() for p in Classifier(model).predict(str(camera_image), top_k=3)]
    for f in frames:
        assert [p["label"] for p in f["top_k"]] == [p["label"] for p in want]
        assert max(abs(p["score"] - q["score"]) for p, q in zip(f["top_k"], want, strict=True)) < 0.02


@pytest.mark.slow
@pytest.mark.stream
def test_selftest_source_on_a_stream_and_a_video_file(camera_image, h264_tcp_server, tmp_path):
    server = h264_tcp_server(camera_image, fps=25)
    report = json.loads(edgecls("selftest", "--source", server.url, "--frames", "20", "--json").stdout)
    assert report["error"] is None and report["frames"] >= 20 and (report["width"], report["height"]) == (640, 480)
    assert 15 < report["fps"] < 40  # sent at 25 fps (-re); the first frames may arrive together
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for i in range(12):
        writer.write(np.full((64, 96, 3), 20 * i, np.uint8))
    writer.release()
    r = edgecls("selftest", "--source", str(video), "--frames", "10")
    assert r.returncode == 0 and r.stdout.startswith(f"{video}: 10 frame(s) of 96x64"), r.stdout + r.stderr
    r = edgecls("selftest", "--source", str(video), "--frames", "50", "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 1 and report["frames"] == 12 and "ended after 12 of 50" in report["error"]
    r = edgecls("selftest", "--source", str(tmp_path / "missing.mp4"))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "no such file" in r.stderr
