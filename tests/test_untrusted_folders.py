"""Folders other programs fill (issue #20, item 5): pipes, devices, dangling links and huge files never stall or
exhaust ``edgecls run``; each is an error row naming the file, and SIGTERM still ends the run at once.

Real FIFOs, real links to ``/dev/zero`` and real ``python -m edgecls run`` processes, each watched with a
timeout and an RSS limit (fixtures_folders.watch), because the failure being defended against is a hang or a
read without end.
"""

from __future__ import annotations

import os
import selectors
import signal
import sys
import threading
from pathlib import Path

import pytest
from fixtures_folders import HOSTILE, colour_model, hostile_folder, start, watch, watch_argv, write_images
from fixtures_reliability import jsonl

from edgecls.runtime.errors import ImageDecodeError
from edgecls.runtime.images.file_guard import read_regular_file
from edgecls.runtime.images.files import walk_images


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return colour_model(tmp_path_factory.mktemp("model") / "colour.onnx")


def _errors_by_name(rows: list[dict]) -> dict[str, str]:
    return {Path(r["source"]).name: r["error"] for r in rows if "error" in r}


def test_run_on_a_folder_with_a_fifo_and_dev_zero_gives_error_rows_fast_and_small(model: Path, tmp_path: Path):
    folder = hostile_folder(tmp_path / "drop")
    # Goal from the issue: under 5 s and 500 MB. The time limit here only catches a read that never ends (a
    # fifo, /dev/zero) and leaves room for any loaded box; the measured time is in docs/RELIABILITY.md.
    got = watch("run", str(model), str(folder), "--json", timeout=120, rss_limit_mb=500)
    assert got.killed is None, f"{got.killed}; stderr: {got.stderr[-2000:]}"
    assert got.returncode == 1, got.stderr  # 1: some inputs are error rows
    assert got.peak_rss_mb < 500
    rows = jsonl(got.stdout)
    errors = _errors_by_name(rows)
    assert set(errors) == set(HOSTILE)
    for name, words in HOSTILE.items():
        assert words in errors[name] and name in errors[name], errors[name]
    assert sum("top_k" in r for r in rows) == 2  # the real images are classified all the same
    assert "Traceback" not in got.stderr


def test_sigterm_ends_a_run_whose_folder_holds_a_fifo(model: Path, tmp_path: Path):
    """The pipe sorts first; a reader blocked in open() on it once kept the process alive past SIGTERM."""
    folder = tmp_path / "drop"
    write_images(folder, 400)
    os.mkfifo(folder / "0pipe.jpg")
    proc = start("run", str(model), str(folder), "--json", "--batch-size", "1", "--decode-threads", "1")
    try:
        sel = selectors.DefaultSelector()
        assert proc.stdout is not None
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.select(timeout=20)  # the first row (or nothing, if the run is stuck): signal it either way
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)  # a reader blocked on the pipe never exits (TimeoutExpired); 60 s: a loaded box
    finally:
        proc.kill()
        out, err = proc.communicate()
    assert code in (143, 1), err  # 143: stopped by the signal; 1: had finished first (error rows)
    rows = jsonl(out)
    assert rows and _errors_by_name(rows).get("0pipe.jpg", "").endswith("(only regular files are read)")


def test_explicit_arguments_and_globs_get_the_same_guard_and_the_cap_is_a_flag(model: Path, tmp_path: Path):
    folder = hostile_folder(tmp_path / "drop")
    # A real image over 1 MB: noise does not compress.
    import cv2
    import numpy as np

    noisy = folder / "noisy.png"
    cv2.imwrite(str(noisy), np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8))
    assert noisy.stat().st_size > 1_000_000
    args = ["run", str(model), str(folder / "huge.jpg"), str(folder / "zero.jpg"), str(noisy),
            str(folder / "0*.jpg"), "--json"]
    default = watch(*args)
    capped = watch(*args, "--max-file-mb", "1")
    assert default.killed is None and capped.killed is None
    d, c = _errors_by_name(jsonl(default.stdout)), _errors_by_name(jsonl(capped.stdout))
    assert "larger than the file size limit (100 MB)" in d["huge.jpg"]
    assert "not a regular file" in d["zero.jpg"]
    assert "0pipe.jpg" in d and "not a regular file" in d["0pipe.jpg"]  # matched by the glob: named, not skipped
    assert "noisy.png" not in d  # classified under the default cap
    assert "larger than the file size limit (1 MB)" in c["noisy.png"]


def _in_thread(fn, timeout: float = 60.0):
    """Call ``fn`` in a daemon thread: a call that blocks forever fails the test instead of hanging it (after a
    generous ``timeout``: a loaded box is slow, a blocked call never returns)."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except Exception as e:  # noqa: BLE001  (the test inspects it)
            result["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "blocked"
    return result


def test_the_descriptor_is_checked_not_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A pipe swapped in after the path was checked (simulated: stat claims a regular file) is still refused,
    and opening it does not block (O_NONBLOCK)."""
    import stat as stat_module

    from edgecls.runtime.images import file_guard

    fifo = tmp_path / "swapped.jpg"
    os.mkfifo(fifo)
    regular = os.stat(__file__)
    real_stat = os.stat
    monkeypatch.setattr(file_guard.os, "stat", lambda p, *a, **k: regular if str(p) == str(fifo) else real_stat(p))
    assert stat_module.S_ISREG(file_guard.os.stat(fifo).st_mode)
    got = _in_thread(lambda: read_regular_file(fifo))
    assert isinstance(got.get("error"), ImageDecodeError) and "named pipe" in str(got["error"])


def test_the_cap_counts_bytes_read_not_the_size_the_file_claims():
    # /proc files report size 0 yet hold data: only reading cap + 1 bytes catches them.
    assert os.stat("/proc/self/maps").st_size == 0
    with pytest.raises(ImageDecodeError, match="larger than the file size limit"):
        read_regular_file("/proc/self/maps", max_bytes=16)
    assert len(read_regular_file("/proc/self/maps", max_bytes=10_000_000)) > 16


_CALIBRATION = """
import sys
from edgecls.data.imageset import FileImageSet
from edgecls.export.quant.grading.image_sets import load_role_images
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import ImageDecodeError
from edgecls.runtime.images.files import walk_images

folder = sys.argv[1]
files = walk_images(folder)
training = FileImageSet(("a",), files, [0] * len(files))
for i, p in enumerate(files):
    try:
        training.load(i)
        print("read", p.name)
    except ImageDecodeError as e:
        print("refused", p.name, e)
images = load_role_images(folder, ModelContract(labels=("a", "b"), input_size=(32, 32)), "calibration")
print("calibration", len(images), len(images.skipped))
"""


def test_training_and_calibration_readers_refuse_pipes_and_devices(tmp_path: Path):
    """quantize/eval/train share the walk and the decoder: their reads go through the same guard.

    In a watched process of its own: a regression that reads /dev/zero must not exhaust the test runner.
    """
    folder = hostile_folder(tmp_path / "calib", images=3)
    got = watch_argv([sys.executable, "-c", _CALIBRATION, str(folder)], timeout=120)
    assert got.killed is None and got.returncode == 0, (got.killed, got.stderr[-2000:])
    lines = got.stdout.splitlines()
    refused = {line.split()[1]: line for line in lines if line.startswith("refused")}
    assert set(refused) == set(HOSTILE)
    assert all(words in refused[name] for name, words in HOSTILE.items()), refused
    assert sum(line.startswith("read") for line in lines) == 3
    assert lines[-1] == f"calibration 3 {len(HOSTILE)}"


def test_the_followed_walk_survives_a_link_loop(tmp_path: Path):
    """Calibration and training folders are walked following links: a link back up must not loop forever."""
    folder = tmp_path / "data"
    write_images(folder / "a", 2)
    (folder / "a" / "up").symlink_to(folder)
    got = _in_thread(lambda: walk_images(folder))
    assert [p.name for p in got["value"]] == ["img_000.png", "img_001.jpg"]


def test_batch_read_tasks_keep_every_failure_as_a_row(tmp_path: Path):
    """What ``batch --ray``'s read tasks return: bytes or an error per input, in order, through the local guard
    and through a pyarrow filesystem (the URI path; a local one stands in for a bucket)."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.fs as pafs

    from edgecls.runtime.batch.reads import read_inputs

    folder = hostile_folder(tmp_path / "drop", images=1)
    (folder / "small.jpg").write_bytes(b"x" * 10)
    names = sorted(str(p) for p in folder.iterdir())
    local = _in_thread(lambda: read_inputs(pa.table({"path": names}), 100_000_000)).get("value")
    assert local is not None and local.column("path").to_pylist() == names
    errors = {Path(n).name: e for n, e in zip(names, local.column("error").to_pylist(), strict=True)}
    assert {n for n, e in errors.items() if e} == set(HOSTILE)
    assert all(words in errors[name] for name, words in HOSTILE.items())
    small = names.index(str(folder / "small.jpg"))
    assert local.column("bytes")[small].as_py() == b"x" * 10
    regular = [str(folder / "small.jpg"), str(folder / "img_000.png"), str(folder / "gone.png")]
    via_fs = read_inputs(pa.table({"path": ["fs://" + n for n in regular]}), 100, pafs.LocalFileSystem(), "fs://")
    assert via_fs.column("bytes")[0].as_py() == b"x" * 10
    fs_errors = via_fs.column("error").to_pylist()
    assert fs_errors[0] is None and "larger than the file size limit" in fs_errors[1]
    assert fs_errors[2].startswith(f"fs://{folder}/gone.png: cannot read")
