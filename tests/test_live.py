"""Frame sources in their capture thread: video files (sequential, stride, real-time pace), missing and broken
sources, and a real loopback MJPEG stream from ffmpeg (frames dropped, age low, reconnect with back-off).
RTSP from a real RTSP server: tests/test_live_rtsp.py."""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest
from fixtures_video import write_video

from edgecls.runtime.sources.live_capture import CaptureSettings, FrameSource
from edgecls.runtime.sources.source_specs import SourceSpec, camera_source


def drain(src: FrameSource, delay: float = 0.0, timeout: float = 60.0) -> list:
    """Every frame ``src`` delivers until it ends by itself (end of file, error, given up), taking ``delay``
    seconds per batch; fails if it has not ended after ``timeout`` seconds (generous: a loaded box is slow)."""
    frames = []
    deadline = time.monotonic() + timeout
    try:
        while not src.finished and time.monotonic() < deadline:
            got = src.take(4)
            frames += got
            if got and delay:
                time.sleep(delay)
            elif not got:
                src.wakeup.wait(0.05)
                src.wakeup.clear()
        assert src.finished, f"{src.spec.name} did not end by itself within {timeout} s"
    finally:
        src.stop()
    return frames


def test_video_file_sequential_with_stride(tmp_path):
    path = write_video(tmp_path / "clip.avi", frames=30)
    src = FrameSource(SourceSpec("video", str(path), "clip"), CaptureSettings(stride=4)).start()
    frames = drain(src)
    assert [f.index for f in frames] == list(range(0, 30, 4))
    # The frame delivered as index i is frame i of the file (MJPG brightness survives within a few levels).
    assert all(abs(float(f.image.mean()) - 8 * f.index) < 6 for f in frames)
    assert src.error is None and src.frames_dropped == 0
    assert all(f.image.dtype == np.uint8 and f.image.shape == (64, 64, 3) for f in frames)


def test_video_file_realtime_drops_frames_for_a_slow_consumer(tmp_path):
    path = write_video(tmp_path / "clip.avi", frames=30, fps=30)  # 1 s of video
    src = FrameSource(SourceSpec("video", str(path), "clip"), CaptureSettings(realtime=True)).start()
    t0 = time.monotonic()
    frames = drain(src, delay=0.1)  # a "model" taking 100 ms per frame
    elapsed = time.monotonic() - t0
    idx = [f.index for f in frames]
    assert src.error is None and elapsed > 0.8  # its own pace, not as fast as possible (load only adds time)
    assert idx == sorted(idx) and len(idx) < 20 and src.frames_dropped > 0
    assert max(np.diff(idx)) >= 2


def test_missing_and_corrupt_video_end_with_an_error(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    for spec in (
        SourceSpec("video", str(tmp_path / "nope.mp4"), "nope.mp4"),
        SourceSpec("video", str(bad), "bad"),
    ):
        src = FrameSource(spec, CaptureSettings(open_timeout=2, read_timeout=2)).start()
        assert drain(src) == []
        assert src.error and spec.name in src.error


def test_missing_camera_fails_fast_without_retrying():
    events: list[str] = []
    settings = CaptureSettings(retries=5, backoff=1.0)
    src = FrameSource(camera_source(7), settings, on_event=lambda _s, m: events.append(m)).start()
    assert drain(src) == []
    assert "camera:7" in src.error and "no such camera" in src.error
    assert src.reconnects == 0 and events == []  # not one back-off: a camera that does not exist is not retried


def test_unreachable_stream_retries_with_exponential_backoff():
    from fixtures_streams import free_port

    events: list[tuple[float, str]] = []
    spec = SourceSpec("stream", f"http://127.0.0.1:{free_port()}/x.mjpg", "dead")
    settings = CaptureSettings(retries=3, backoff=0.1, open_timeout=1, read_timeout=1)
    t0 = time.monotonic()
    src = FrameSource(spec, settings, on_event=lambda s, m: events.append((time.monotonic() - t0, m))).start()
    assert drain(src) == []
    assert src.reconnects == 3
    assert [m.split("reconnecting in ")[1].split(" s")[0] for _, m in events] == ["0.10", "0.20", "0.40"]
    assert "giving up" in src.error and "3 reconnect" in src.error


@pytest.mark.stream
def test_mjpeg_stream_keeps_only_the_newest_frame(mjpeg_server):
    """60 fps from ffmpeg on loopback, a consumer that takes 100 ms per frame on purpose: the frames in
    between are dropped (counted, indices jump) and each frame taken is the newest, not one from a backlog."""
    interval_ms = 1000 / 60
    server = mjpeg_server(fps=60)
    src = FrameSource(SourceSpec("stream", server.url, "cam"), CaptureSettings(retries=0)).start()
    ages, idx = [], []
    deadline = time.monotonic() + 10
    while len(idx) < 15 and time.monotonic() < deadline:
        got = src.take()
        if not got:
            src.wakeup.wait(0.05)
            src.wakeup.clear()
            continue
        ages.append((time.monotonic() - got[0].captured) * 1e3)  # age when the consumer gets it
        idx.append(got[0].index)
        time.sleep(0.1)  # the slow consumer: six frame intervals per frame
    src.stop()
    assert len(idx) == 15, f"only {len(idx)} frames; error={src.error}"
    assert idx == sorted(set(idx))
    assert src.frames_dropped > 0 and max(np.diff(idx)) >= 2
    # A queue would hand out ever older frames: each take 100 ms - 1 frame interval = 83 ms further behind, 1 s
    # from the first three takes to the last three. The newest-frame slot's ages do not grow (the box's load
    # shifts them all alike); an absolute bound on them would measure the box, not the slot.
    growth = statistics.median(ages[-3:]) - statistics.median(ages[:3])
    assert growth < 12 * (100 - interval_ms) / 2, (growth, ages)  # half of what a queue's would be


@pytest.mark.stream
def test_killed_server_reconnects_then_ends_cleanly(mjpeg_server):
    server = mjpeg_server(fps=30)
    events: list[str] = []
    settings = CaptureSettings(retries=2, backoff=0.1, open_timeout=1, read_timeout=1)
    src = FrameSource(
        SourceSpec("stream", server.url, "cam"), settings, on_event=lambda s, m: events.append(m)
    )
    src.start()
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 5 and time.monotonic() < deadline:
        got += src.take()
        time.sleep(0.02)
    assert got, src.error
    server.kill()
    rest = drain(src)  # it ends by itself once its two retries are spent
    assert len(events) == 2 and "0.10 s" in events[0] and "0.20 s" in events[1]
    assert src.error and "giving up" in src.error
    # Every frame delivered once, in order, across the loss: indices strictly increase over what was taken
    # before the kill and what was drained after it (``rest`` is usually empty: the server is gone).
    indices = [f.index for f in got + rest]
    assert indices == sorted(set(indices)), indices


def test_stream_that_never_answers_ends_with_an_error():
    """A server that accepts the connection and then says nothing: the open/read timeout ends the source."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    try:
        settings = CaptureSettings(retries=0, open_timeout=1, read_timeout=1)
        src = FrameSource(SourceSpec("stream", f"http://127.0.0.1:{port}/x.mjpg", "silent"), settings).start()
        assert drain(src) == []  # the 1 s timeouts end it by itself (drain fails on a hang)
        assert src.error and "silent" in src.error
    finally:
        server.close()
