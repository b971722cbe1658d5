"""The library side of `edgecls run`: batched folder pipeline and the multi-source run loop."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from test_live import write_video

from edgecls.runtime.classifier import Classifier
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.folder_runner import classify_files, classify_files_sequential
from edgecls.runtime.live import CaptureSettings
from edgecls.runtime.runner import ErrorRecord, Record, RunOptions, RunSummary, run_sources
from edgecls.runtime.sources import expand_sources


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
    options = RunOptions(top_k=1, batch_size=4, capture=CaptureSettings(stride=2))
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
    summary = run_sources(Classifier(runtime_models.cnn), specs, [], sink, RunOptions(max_frames=5))
    assert summary.results == 5 and summary.ok
    stop = threading.Event()
    stop.set()
    sink = Collect()
    summary = run_sources(Classifier(runtime_models.cnn), specs, [], sink, RunOptions(), stop)
    assert summary.interrupted and summary.results == 0 and summary.line().startswith("interrupted")


def test_annotate_and_save_names(tmp_path):
    from edgecls.runtime.classifier import Prediction
    from edgecls.runtime.output import SaveSink, annotate, display_available

    img = np.zeros((120, 160, 3), np.uint8)
    out = annotate(img, [Prediction("cat", 0, 0.9)], fps=12.5)
    assert out.shape == img.shape and out.any() and not img.any()  # drawn on a copy
    sink = SaveSink(tmp_path / "s")
    preds = [Prediction("cat", 0, 0.9)]
    for src in ("a/x.png", "b/x.png", "c/y.tif"):
        sink.result(Record(src, preds, 1.0, image=img))
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["x.png", "x_1.png", "y.png"]
    assert display_available() is None or "DISPLAY" in display_available()


def test_frame_sources_share_batches_fairly(runtime_models, tmp_path):
    a = write_video(tmp_path / "a.avi", frames=40)
    b = write_video(tmp_path / "b.avi", frames=40)
    specs, _ = expand_sources([str(a), str(b)])
    sink = Collect()
    run_sources(Classifier(runtime_models.cnn), specs, [], sink, RunOptions(batch_size=8))
    first_half = {r.source for r in sink.results[:40]}
    assert first_half == {str(a), str(b)}  # neither video waits for the other to finish
    assert len(sink.results) == 80
