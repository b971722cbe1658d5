"""``edgecls run`` / ``edgecls providers`` end to end: JSON Lines, CSV, --save, --show refusal, bad input,
odd models, exit codes, and the torch/onnx-free import path."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from fixtures_runtime import REPO, run_edgecls, start_edgecls
from fixtures_video import write_video
from typer.testing import CliRunner

from edgecls.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_good_and_bad_images_one_row_each(runtime_models, runtime_images):
    paths = [str(p) for p in (*runtime_images.good, *runtime_images.bad)]
    r = invoke("run", str(runtime_models.cnn), *paths, "--json", "--top-k", "2")
    assert r.exit_code == 1, r.output
    rows = jsonl(r.stdout)
    assert [row["source"] for row in rows] == paths  # order kept, one row per input
    by_source = {row["source"]: row for row in rows}
    for p in runtime_images.good:  # odd-but-valid images are classified
        row = by_source[str(p)]
        assert "error" not in row, row
        assert len(row["top_k"]) == 2 and set(row["top_k"][0]) == {"label", "index", "score"}
        assert row["latency_ms"] >= 0 and "frame" not in row and "age_ms" not in row
    for p in runtime_images.bad:  # broken ones become error rows naming the file
        assert str(p) in by_source[str(p)]["error"]
    assert "4 error(s)" in r.output and "Traceback" not in r.output


def test_all_good_exits_zero_with_table(runtime_models, runtime_images):
    from edgecls.runtime.inference.classifier import Classifier

    images = runtime_images.good[:2]
    # Wide enough that each row stays on one line (rich wraps at the terminal's width).
    r = CliRunner().invoke(app, ["run", str(runtime_models.cnn), *map(str, images)], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert "2 result(s), 0 error(s)" in r.output
    # Each image's row shows the Classifier's own top-3, in order: label and score per column (every row holds
    # all three labels of the model, so finding a label somewhere in the output proved nothing).
    clf = Classifier(str(runtime_models.cnn))
    for image in images:
        row = next(line for line in r.stdout.splitlines() if image.name in line)
        cells = [cell.strip() for cell in row.split("│")]
        want = [f"{p.label} {p.score:.3f}" for p in clf.predict(str(image), top_k=3)]
        assert cells[1:4] == want, (row, want)


def test_folder_csv_and_save(runtime_models, runtime_images, tmp_path):
    out_csv, save = tmp_path / "out.csv", tmp_path / "annotated"
    r = invoke(
        "run",
        str(runtime_models.cnn),
        str(runtime_images.root),
        "--json",
        "--csv",
        str(out_csv),
        "--save",
        str(save),
        "--batch-size",
        "3",
        "--decode-threads",
        "2",
    )
    assert r.exit_code == 1  # the folder holds the broken files too
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == len(runtime_images.good) + len(runtime_images.bad) == len(jsonl(r.stdout))
    assert sum(1 for row in rows if row["error"]) == len(runtime_images.bad)
    good = [row for row in rows if not row["error"]]
    assert all(json.loads(row["top_k"])[0]["label"] == row["label"] for row in good)
    saved = sorted(p.name for p in save.iterdir())
    assert "color.png" in saved and "photo.jpg" in saved and len(saved) == len(runtime_images.good)
    assert cv2.imread(str(save / "color.png")).shape == (64, 64, 3)
    assert not list(tmp_path.glob(".*.tmp*"))  # atomic writes left no temporaries


def test_video_file_frames_and_saved_video(runtime_models, tmp_path):
    clip = write_video(tmp_path / "clip.avi", frames=20)
    save = tmp_path / "saved"
    r = invoke("run", str(runtime_models.cnn), str(clip), "--json", "--stride", "5", "--save", str(save))
    assert r.exit_code == 0, r.output
    rows = jsonl(r.stdout)
    assert [row["frame"] for row in rows] == [0, 5, 10, 15]
    assert all(row["source"] == str(clip) and row["age_ms"] >= 0 for row in rows)
    videos = list(save.glob("*.avi"))
    assert len(videos) == 1
    cap = cv2.VideoCapture(str(videos[0]))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4


def test_foreign_model_runs_with_contract_flags(runtime_models, runtime_images, tmp_path):
    img = str(runtime_images.good[0])
    r = invoke("run", str(runtime_models.foreign), img)
    assert isinstance(r.exception, Exception) and "no edgecls contract" in str(r.exception)
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    r = invoke(
        "run",
        str(runtime_models.foreign),
        img,
        "--json",
        "--labels",
        str(labels),
        "--resize-mode",
        "stretch",
        "--mean",
        "0.5",
        "--std",
        "0.5,0.5,0.5",
        "-k",
        "1",
    )
    assert r.exit_code == 0, r.output
    assert jsonl(r.stdout)[0]["top_k"][0]["label"] in {"cat", "dog", "bird"}
    r = invoke("run", str(runtime_models.foreign), img, "--json", "--labels", "a,b,c", "--input-size", "32")
    assert r.exit_code == 0, r.output
    for old_spelling in ("--img-size", "--resize", "--crop"):  # one vocabulary: the contract's field names
        r = invoke("run", str(runtime_models.foreign), img, "--labels", "a,b,c", old_spelling, "32")
        assert r.exit_code == 2 and "No such option" in r.output, (old_spelling, r.output)


def test_missing_camera_is_an_error_row(runtime_models):
    r = invoke("run", str(runtime_models.cnn), "--camera", "7", "--json")
    assert r.exit_code == 1
    assert jsonl(r.stdout) == [
        {"source": "camera:7", "error": "camera:7: no such camera (/dev/video7 does not exist)"}
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY/WAYLAND_DISPLAY name a screen on Linux "
                    "only; elsewhere a window needs no variable, so there is nothing to refuse on")
def test_show_refuses_without_display(runtime_models, runtime_images):
    """Without DISPLAY and WAYLAND_DISPLAY (run_edgecls removes both), --show is refused up front for that reason,
    whatever OpenCV build is installed: one error line, exit 2, nothing classified."""
    r = run_edgecls("run", str(runtime_models.cnn), str(runtime_images.good[0]), "--show", "--json")
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout)
    assert r.stderr.strip().splitlines() == [
        "error: --show needs a display and a GUI OpenCV: no display (DISPLAY and WAYLAND_DISPLAY are not set); "
        "use --save DIR to write annotated output"
    ]


def test_provider_selection_and_options(runtime_models, runtime_images):
    img = str(runtime_images.good[0])
    r = invoke("run", str(runtime_models.cnn), img, "--provider", "cuda")
    assert "not available" in str(r.exception) and "CPUExecutionProvider" in str(r.exception)
    r = invoke(
        "run", str(runtime_models.cnn), img, "--provider", "cpu", "--strict", "--threads", "1", "--json"
    )
    assert r.exit_code == 0, r.output
    r = invoke("run", str(runtime_models.cnn), img, "--provider-option", "novalue")
    assert "KEY=VALUE" in str(r.exception)


def test_providers_command_lists_cpu():
    r = invoke("providers", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["provider"]: row for row in jsonl(r.stdout)}
    cpu = rows["CPUExecutionProvider"]
    assert cpu["available"] and cpu["source"] == "built-in" and cpu["devices"]
    assert not rows["CUDAExecutionProvider"]["available"]
    r = invoke("providers")
    assert r.exit_code == 0 and "CPUExecutionProvider" in r.stdout


@pytest.mark.parametrize("attr", ["corrupt", "nonclassifier", "empty", "wrong_size"])
def test_bad_models_exit_2_with_one_line(runtime_models, runtime_images, attr):
    r = run_edgecls("run", str(getattr(runtime_models, attr)), str(runtime_images.good[0]), "--json")
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("error: ") and str(getattr(runtime_models, attr)) in lines[0]
    )


def test_full_run_never_imports_torch_or_onnx(runtime_models, runtime_images):
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: print('HEAVY', [m for m in ('torch', 'onnx') if m in sys.modules], "
        "file=sys.stderr))\n"
        f"sys.argv = ['edgecls', 'run', {str(runtime_models.cnn)!r}, {str(runtime_images.good[0])!r}, "
        "'--json']\n"
        "from edgecls.cli import main\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert jsonl(r.stdout)[0]["top_k"]
    assert "HEAVY []" in r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; import edgecls.runtime; "
            "from edgecls.runtime.inference.classifier import Classifier; "
            "import edgecls.runtime.run.main, edgecls.runtime.run.console_sinks, "
            "edgecls.runtime.sources.live_capture; "
            "print([m for m in ('torch', 'onnx') if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert r.stdout.strip() == "[]", r.stderr


@pytest.mark.stream
def test_sigint_stops_a_live_run_cleanly(mjpeg_server, runtime_models, tmp_path):
    """SIGINT to `edgecls run` on a stream: exit 130, every line written is complete, CSV published."""
    server = mjpeg_server(fps=30)
    out_csv = tmp_path / "live.csv"
    proc = start_edgecls("run", str(runtime_models.cnn), server.url, "--json", "--csv", str(out_csv))
    first = proc.stdout.readline()  # wait for the first result
    assert json.loads(first)["frame"] >= 0
    first += proc.stdout.readline()  # ... and a second: two complete rows before the signal, whatever the load
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    rows = jsonl(first + out)
    assert len(rows) >= 2 and all("top_k" in row for row in rows)
    assert "interrupted:" in err and "Traceback" not in err
    assert len(list(csv.DictReader(out_csv.open()))) == len(rows)


@pytest.mark.stream
def test_stream_through_cli_reports_frames_and_age(mjpeg_server, runtime_models):
    """Live rows carry the stream's frame index and their age; frame skipping itself is proven with a
    deliberately slow consumer in test_runtime_runner (the model's speed is not something a test controls)."""
    server = mjpeg_server(fps=30)
    t0 = time.monotonic()
    r = run_edgecls("run", str(runtime_models.cnn), server.url, "--json", "--max-frames", "10", timeout=120)
    run_ms = (time.monotonic() - t0) * 1e3
    assert r.returncode == 0, r.stderr
    rows = jsonl(r.stdout)
    assert len(rows) == 10 and all(row["source"] == server.url and row["top_k"] for row in rows)
    frames = [row["frame"] for row in rows]
    assert frames == sorted(set(frames))
    assert all(0 <= row["age_ms"] <= run_ms for row in rows)  # a frame of this run, not from before it started
    assert "10 result(s), 0 error(s)" in r.stderr


@pytest.mark.stream
def test_stream_killed_gives_retries_then_error_row(mjpeg_server, runtime_models):
    server = mjpeg_server(fps=30)
    proc = start_edgecls(
        "run",
        str(runtime_models.cnn),
        server.url,
        "--json",
        "--retries",
        "2",
        "--backoff",
        "0.1",
        "--read-timeout",
        "2",
    )
    assert json.loads(proc.stdout.readline())["frame"] >= 0
    server.kill()
    out, err = proc.communicate(timeout=120)  # two retries and 2 s read timeouts; generous for a loaded box
    assert proc.returncode == 1
    last = jsonl(out)[-1]
    assert last["source"] == server.url and "giving up" in last["error"]
    assert err.count("reconnecting in") == 2 and "Traceback" not in err
    assert Path(server.url).name in err


def test_sigterm_stops_a_realtime_video_cleanly(runtime_models, tmp_path):
    """SIGTERM while a video plays at real-time pace: exit 143, complete JSON lines, summary on stderr."""
    clip = write_video(tmp_path / "long.avi", frames=300, fps=30)  # 10 s of video
    proc = start_edgecls("run", str(runtime_models.cnn), str(clip), "--realtime", "--json")
    first = proc.stdout.readline()  # playing: at real-time pace the 10 s clip is far from its end
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    rows = jsonl(first + out)
    assert rows and all(row["source"] == str(clip) and "age_ms" in row for row in rows)
    assert len(rows) < 300 and "interrupted:" in err and "Traceback" not in err
