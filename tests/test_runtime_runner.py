"""The library side of `edgecls run`: batched folder pipeline and the multi-source run loop."""

from __future__ import annotations

import collections
import json
import statistics
import sys
import threading
import time

import numpy as np
import pytest
from fixtures_video import write_video

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.run.main import RunOptions, run
from edgecls.runtime.sources.image_batches import classify_files, classify_files_sequential
from edgecls.runtime.sources.live_capture import CaptureSettings
from edgecls.runtime.sources.records import ErrorRecord, Record, RunSummary
from edgecls.runtime.sources.source_loop import LoopOptions, run_sources
from edgecls.runtime.sources.source_specs import SourceSpec, expand_sources


class Collect:
    """A sink that keeps everything it is given."""

    def __init__(self) -> None:
        self.results: list[Record] = []
        self.errors: list[ErrorRecord] = []
        self.notices: list[str] = []
        self.done: list[str] = []
        self.summary: RunSummary | None = None

    def result(self, record: Record) -> None:
        self.results.append(record)

    def error(self, record: ErrorRecord) -> None:
        self.errors.append(record)

    def notice(self, source: str, message: str) -> None:
        self.notices.append(message)

    def source_done(self, source: str) -> None:
        self.done.append(source)

    def close(self, summary: RunSummary) -> None:
        self.summary = summary


@pytest.mark.parametrize(("batch", "workers"), [(1, 1), (3, 2), (16, 4)])
def test_batched_parallel_equals_one_by_one(runtime_models, runtime_images, batch, workers):
    clf = Classifier(runtime_models.cnn)
    files = [str(p) for p in (*runtime_images.good, *runtime_images.bad)] * 2
    seq = list(classify_files_sequential(clf, files, top_k=2))
    par = list(classify_files(clf, files, top_k=2, batch_size=batch, workers=workers, keep_images=True))
    assert [r.source for r in par] == files
    for a, b in zip(seq, par, strict=True):
        assert (a.error is None) == (b.error is None)
        if a.error is None:
            assert [p.index for p in a.predictions] == [p.index for p in b.predictions]
            assert np.allclose([p.score for p in a.predictions], [p.score for p in b.predictions], atol=1e-5)
            assert b.image is not None and b.image.ndim == 3
        else:
            assert a.error == b.error and b.source in b.error
    with pytest.raises(EdgeclsError):
        list(classify_files(clf, files, batch_size=0))


def test_run_mixes_images_videos_and_problems(runtime_models, runtime_images, tmp_path):
    a = write_video(tmp_path / "a.avi", frames=12)
    b = write_video(tmp_path / "b.avi", frames=8)
    args = [str(runtime_images.good[0]), str(a), str(b), str(tmp_path / "gone.png")]
    specs, problems = expand_sources(args)
    sink = Collect()
    options = LoopOptions(top_k=1, batch_size=4, capture=CaptureSettings(stride=2))
    summary = run_sources(Classifier(runtime_models.cnn), specs, problems, sink, options)
    assert sink.summary is summary and not summary.interrupted
    assert summary.results == 1 + 6 + 4 and summary.errors == 1
    assert summary.failed == [str(tmp_path / "gone.png")]
    for video, n in ((a, 12), (b, 8)):
        frames = [r.frame for r in sink.results if r.source == str(video)]
        assert frames == list(range(0, n, 2))  # in order, nothing dropped in sequential mode
        assert str(video) in sink.done
    assert "1 of 4 source(s) failed" in summary.line()


def test_max_frames_and_stop_event(runtime_models, tmp_path):
    clip = write_video(tmp_path / "c.avi", frames=40)
    specs, _ = expand_sources([str(clip)])
    sink = Collect()
    summary = run_sources(Classifier(runtime_models.cnn), specs, [], sink, LoopOptions(max_frames=5))
    assert summary.results == 5 and summary.ok
    stop = threading.Event()
    stop.set()
    sink = Collect()
    summary = run_sources(Classifier(runtime_models.cnn), specs, [], sink, LoopOptions(), stop)
    assert summary.interrupted and summary.results == 0 and summary.line().startswith("interrupted")


def test_annotate_and_save_names(tmp_path):
    from edgecls.runtime.inference.annotate import annotate
    from edgecls.runtime.inference.classifier import Prediction
    from edgecls.runtime.run.image_sinks import SaveSink

    img = np.zeros((120, 160, 3), np.uint8)
    out = annotate(img, [Prediction("cat", 0, 0.9)], fps=12.5)
    assert out.shape == img.shape and out.any() and not img.any()  # drawn on a copy
    sink = SaveSink(tmp_path / "s")
    preds = [Prediction("cat", 0, 0.9)]
    for src in ("a/x.png", "b/x.png", "c/y.tif"):
        sink.result(Record(src, preds, 1.0, image=img))
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["x.png", "x_1.png", "y.png"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the DISPLAY check is Linux's")
def test_show_without_a_display_is_refused_with_one_line(monkeypatch):
    from edgecls.runtime.run.image_sinks import ShowSink, display_available, opencv_gui_backend

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    why = display_available()
    assert why is not None and "DISPLAY" in why
    with pytest.raises(EdgeclsError, match="--show needs a display and a GUI OpenCV: no display"):
        ShowSink(threading.Event())
    # With a display, what is left is OpenCV itself: the base install's headless build has no windows.
    headless = opencv_gui_backend() == "NONE"
    for name, value in (("WAYLAND_DISPLAY", "wayland-0"), ("DISPLAY", ":0")):
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        monkeypatch.setenv(name, value)
        why = display_available()
        assert ("edgecls[gui]" in why) if headless else why is None, why


def test_frame_sources_share_batches_fairly(runtime_models, tmp_path):
    """Two videos, batch 8: each batch gives a source at most half the slots, and the two interleave.

    The share rule is checked per batch (``done`` is one value per batch), which does not depend on timing; the
    interleaving check gives the second video's capture thread ample time to open (the first video is four
    times longer and each result takes 5 ms to handle), since under load opening a file can take 100 ms or more.
    """
    a = write_video(tmp_path / "a.avi", frames=160)
    b = write_video(tmp_path / "b.avi", frames=40)
    specs, _ = expand_sources([str(a), str(b)])
    sink = SlowSink(delay=0.005)
    run_sources(Classifier(runtime_models.cnn), specs, [], sink, LoopOptions(batch_size=8))
    assert len(sink.results) == 200
    batches: dict[float, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in sink.results:
        batches[r.done][r.source] += 1
    b_done = max(r.done for r in sink.results if r.source == str(b))
    while_both = [counts for done, counts in batches.items() if done <= b_done]
    assert max(n for counts in while_both for n in counts.values()) <= 4  # a half share while both run
    # Alone again, the long video fills whole batches (its reader decodes far faster than 5 ms a result).
    assert any(max(counts.values()) > 4 for done, counts in batches.items() if done > b_done)
    first_b = next(i for i, r in enumerate(sink.results) if r.source == str(b))
    last_a = max(i for i, r in enumerate(sink.results) if r.source == str(a))
    assert first_b < last_a  # neither video waits for the other to finish
    assert any(len(counts) == 2 for counts in batches.values())  # some batch carried both


class SlowSink(Collect):
    """A consumer slower than the stream on purpose: every result takes ``delay`` seconds to handle."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def result(self, record: Record) -> None:
        super().result(record)
        time.sleep(self.delay)


@pytest.mark.stream
def test_live_stream_with_a_slow_consumer_skips_frames_and_stays_current(mjpeg_server, runtime_models):
    """60 fps stream, 100 ms per result: the loop classifies the newest frame each time, skipping the rest."""
    interval_ms = 1000 / 60
    server = mjpeg_server(fps=60)
    sink = SlowSink(delay=0.1)
    options = LoopOptions(top_k=1, batch_size=1, max_frames=12, capture=CaptureSettings(retries=0))
    summary = run_sources(Classifier(runtime_models.cnn), [SourceSpec("stream", server.url, "cam")], [], sink, options)
    frames = [r.frame for r in sink.results]
    assert len(frames) == 12 and frames == sorted(set(frames)), (frames, sink.errors)
    assert max(np.diff(frames)) >= 2 and summary.per_source["cam"].dropped > 0
    assert "live frame(s) skipped to stay current" in summary.line()
    # Each classified frame is the newest when its turn comes: ages stay level. A queue's would grow by 100 ms -
    # 1 frame interval per result, 750 ms from the first three results to the last three. (An absolute bound on
    # the ages would measure the box's load, not the loop.)
    ages = [r.age_ms for r in sink.results]
    growth = statistics.median(ages[-3:]) - statistics.median(ages[:3])
    assert growth < 9 * (100 - interval_ms) / 2, (growth, ages)  # half of what a queue's would be


def test_run_library_call_returns_the_exit_status(runtime_models, runtime_images, tmp_path, capsys):
    """What ``edgecls run`` calls: RunOptions in, exit status out, rows on stdout, the summary on stderr."""
    good = str(runtime_images.good[0])
    options = RunOptions(runtime_models.cnn, sources=(good,), loop=LoopOptions(top_k=2), json_lines=True)
    assert run(options) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 1 and rows[0]["source"] == good and len(rows[0]["top_k"]) == 2
    assert "1 result(s), 0 error(s)" in err
    missing = str(tmp_path / "missing.jpg")
    assert run(RunOptions(runtime_models.cnn, sources=(good, missing), json_lines=True)) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == {"source": missing, "error": f"{missing}: no such file or directory"}  # problems first
    with pytest.raises(EdgeclsError, match="nothing to classify"):
        run(RunOptions(runtime_models.cnn))
