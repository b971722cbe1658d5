"""Watched folders (``run DIR --watch``, ``batch DIR --watch``): when a file is ready, the record of done files
(run's CSV, batch's Parquet parts) read back after a kill, ``--move-done``, and the commands end to end on real
files with a real model. The 500-file run with a kill -9 in the middle: tests/test_watch_soak.py."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from fixtures_runtime import REPO, golden_images

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.sources.folder_watch import FileKey, FolderWatcher, open_for_writing
from edgecls.runtime.sources.move_done import check_move_dir, move_done
from edgecls.runtime.sources.records import ErrorRecord, Record, RunSummary


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write_image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, golden_images(1, seed=seed)[0])
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def key_of(path: Path) -> FileKey:
    st = path.stat()
    return FileKey(str(path), st.st_size, st.st_mtime_ns)


def test_a_file_is_ready_once_after_it_settles(tmp_path):
    clock = Clock()
    watcher = FolderWatcher([tmp_path], settle_s=1.0, clock=clock, writer_check=lambda p: None)
    a = write_image(tmp_path / "a.png")
    (tmp_path / ".b.png.part").write_bytes(a.read_bytes())  # hidden while being written
    (tmp_path / "notes.txt").write_text("not an image")
    assert watcher.poll() == []  # first seen now: not settled yet
    clock.now = 0.9
    assert watcher.poll() == []
    clock.now = 1.0
    assert [r.key for r in watcher.poll()] == [key_of(a)]
    clock.now = 5.0
    assert watcher.poll() == []  # handed out once, even before it is marked done
    (tmp_path / "sub").mkdir()
    os.rename(tmp_path / ".b.png.part", tmp_path / "sub" / "b.png")  # renamed into place whole
    assert watcher.poll() == []
    clock.now = 6.0
    ready = watcher.poll()
    assert [r.key.path for r in ready] == [str(tmp_path / "sub" / "b.png")] and ready[0].root == tmp_path


def test_a_growing_file_waits_and_a_rewritten_file_is_new(tmp_path):
    clock = Clock()
    watcher = FolderWatcher([tmp_path], settle_s=1.0, clock=clock, writer_check=lambda p: None)
    a = tmp_path / "a.jpg"
    data = write_image(tmp_path / "src.png").read_bytes()
    (tmp_path / "src.png").unlink()
    with open(a, "wb") as f:
        for i in range(4):  # a slow writer: a chunk every 0.8 s, each within the settle interval
            f.write(data[i * len(data) // 4 : (i + 1) * len(data) // 4])
            f.flush()
            os.utime(a, ns=(i * 10**9, i * 10**9))  # distinct mtimes even on a coarse clock
            assert watcher.poll() == []
            clock.now += 0.8
    clock.now += 1.0
    (ready,) = watcher.poll()
    watcher.mark_done([ready.key])
    clock.now += 5
    assert watcher.poll() == []
    os.utime(a, ns=(99 * 10**9, 99 * 10**9))  # rewritten (a new version: new mtime)
    assert watcher.poll() == []
    clock.now += 1.0
    assert [r.key for r in watcher.poll()] == [key_of(a)]


def test_done_files_are_never_handed_out_and_open_writers_are_waited_for(tmp_path):
    clock = Clock()
    a, b = write_image(tmp_path / "a.png"), write_image(tmp_path / "b.png", seed=1)
    held = {str(b)}
    watcher = FolderWatcher([tmp_path], settle_s=0.0, done=[key_of(a)], clock=clock,
                            writer_check=lambda p: p in held)
    assert watcher.poll() == []  # a: done before; b: its writer still has it open
    held.clear()
    assert [r.key.path for r in watcher.poll()] == [str(b)]


def test_open_for_writing_sees_another_process_writing(tmp_path):
    a = write_image(tmp_path / "a.png")
    if open_for_writing(str(a)) is None:
        pytest.skip("file leases are not available here")
    writer = subprocess.Popen([sys.executable, "-c", f"f = open({str(a)!r}, 'ab'); print('open', flush=True); "
                               "input()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"
        assert open_for_writing(str(a)) is True
    finally:
        writer.communicate("\n", timeout=10)
    assert open_for_writing(str(a)) is False


def test_a_writer_opening_the_file_during_the_probe_does_not_kill_the_watcher(tmp_path):
    """The kernel signals the lease holder when another process opens its file for writing; the default signal
    (SIGIO) ends the process. Here the probe is slowed down so that a writer opens the file while it holds the
    lease: the watcher must survive (it did not before the probe chose its signal)."""
    a = write_image(tmp_path / "a.png")
    if open_for_writing(str(a)) is None:
        pytest.skip("file leases are not available here")
    script = f"""
import fcntl, subprocess, sys, time
from edgecls.runtime.sources.folder_watch import open_for_writing
real = fcntl.fcntl
def slow(fd, cmd, arg=0):
    out = real(fd, cmd, arg)
    if cmd == fcntl.F_SETLEASE and arg == fcntl.F_RDLCK:
        subprocess.Popen([sys.executable, "-c", "open({str(a)!r}, 'ab').close()"])
        time.sleep(1.0)  # the writer's open now waits on the lease, and the kernel signals this process
    return out
fcntl.fcntl = slow
print(open_for_writing({str(a)!r}), flush=True)
time.sleep(0.5)
print("alive")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["False", "alive"], (done.returncode, done.stderr)


def test_move_done_keeps_the_relative_path_and_never_replaces(tmp_path):
    root, done = tmp_path / "in", tmp_path / "done"
    first = write_image(root / "cam" / "IMG_0001.jpg")
    assert move_done(first, root, done) == done / "cam" / "IMG_0001.jpg" and not first.exists()
    again = write_image(root / "cam" / "IMG_0001.jpg", seed=2)  # the camera reused the name
    assert move_done(again, root, done) == done / "cam" / "IMG_0001_1.jpg"
    assert (done / "cam" / "IMG_0001.jpg").read_bytes() != (done / "cam" / "IMG_0001_1.jpg").read_bytes()
    with pytest.raises(EdgeclsError, match="inside the watched folder"):
        check_move_dir(root / "done", [root])
    check_move_dir(done, [root])


def test_move_done_across_filesystems_copies_whole(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem here")
    root = tmp_path / "in"
    a = write_image(root / "a.png")
    data = a.read_bytes()
    target_dir = Path(os.environ.get("TMPDIR_SHM", shm)) / f"edgecls-move-{os.getpid()}"
    try:
        moved = move_done(a, root, target_dir)
        assert moved.read_bytes() == data and not a.exists()
        assert [p.name for p in target_dir.iterdir()] == ["a.png"]  # no temporary left behind
    finally:
        import shutil

        shutil.rmtree(target_dir, ignore_errors=True)


def _record(path: str, score: float = 0.9) -> Record:
    from edgecls.runtime.inference.classifier import Prediction

    return Record(path, [Prediction("circle", 0, score), Prediction("square", 1, 1 - score)], 1.0)


def test_watch_csv_is_read_back_and_a_torn_last_row_is_cut(tmp_path):
    from edgecls.runtime.run.csv_watch_sink import WATCH_FIELDS, WatchCsvSink

    out = tmp_path / "out.csv"
    keys = [FileKey(str(tmp_path / f"{i}.png"), 100 + i, 10**18 + i) for i in range(3)]
    sink = WatchCsvSink(out)
    assert sink.done_keys() == set()
    sink.expect(keys)
    sink.result(_record(keys[0].path))
    sink.error(ErrorRecord(keys[1].path, f"{keys[1].path}: not a decodable image"))
    assert sink.commit() == keys[:2]
    sink.result(_record(keys[2].path))
    sink._file.flush()  # the row is written but not committed: then the process is killed mid-row
    data = out.read_bytes()
    out.write_bytes(data[:-7])
    again = WatchCsvSink(out)
    assert again.done_keys() == set(keys[:2])
    rows = list(csv.DictReader(out.open(newline="")))
    assert [r["source"] for r in rows] == [keys[0].path, keys[1].path]
    assert tuple(rows[0]) == WATCH_FIELDS and rows[1]["error"].endswith("not a decodable image")
    again.close(RunSummary())
    plain = tmp_path / "plain.csv"
    plain.write_text("source,frame,label,index,score,top_k,latency_ms,age_ms,error\n")
    with pytest.raises(EdgeclsError, match="not written by run --watch"):
        WatchCsvSink(plain)


def test_parquet_parts_commit_in_parts_and_are_read_back(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from edgecls.runtime.batch.watch_parts import MAX_DELAY_S, ParquetParts

    clock = Clock()
    keys = [FileKey(str(tmp_path / f"{i}.png"), 100 + i, 10**18 + i) for i in range(3)]
    parts = ParquetParts(tmp_path / "table", clock=clock)
    parts.expect(keys)
    parts.result(_record(keys[0].path))
    assert parts.commit() == [] and list((tmp_path / "table").iterdir()) == []  # waits for more rows
    clock.now = MAX_DELAY_S
    assert parts.commit() == keys[:1]
    parts.error(ErrorRecord(keys[1].path, "broken"))
    assert parts.commit(force=True) == keys[1:2]
    parts.result(_record(keys[2].path))  # never committed: the process is killed
    assert sorted(p.name for p in (tmp_path / "table").iterdir()) == ["part-000000.parquet", "part-000001.parquet"]
    again = ParquetParts(tmp_path / "table")
    assert again.done_keys() == set(keys[:2])
    table = pq.read_table(tmp_path / "table")
    assert table.column("source").to_pylist() == [keys[0].path, keys[1].path]
    assert table.schema.names == ["source", "top_k", "latency_ms", "error"]
    one_shot = tmp_path / "one_shot"
    one_shot.mkdir()
    pq.write_table(table.replace_schema_metadata({}), one_shot / "part-00000.parquet")
    with pytest.raises(EdgeclsError, match="not written by batch --watch"):
        ParquetParts(one_shot)


# --- the commands -------------------------------------------------------------------------------------------
def edgecls(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgecls", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def start_edgecls(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edgecls", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)


def wait_for(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_watch_flags_refuse_what_cannot_work(runtime_models, tmp_path):
    from typer.testing import CliRunner

    from edgecls.cli import app

    model = str(runtime_models.cnn)
    write_image(tmp_path / "in" / "a.png")
    cases = [
        (["run", model, str(tmp_path / "in"), "--watch"], "--watch needs --csv FILE"),
        (["run", model, str(tmp_path / "in" / "a.png"), "--watch", "--csv", str(tmp_path / "o.csv")], "not a folder"),
        (["run", model, str(tmp_path / "in"), "--move-done", str(tmp_path / "d")], "--move-done needs --watch"),
        (["run", model, str(tmp_path / "in"), "--watch", "--csv", str(tmp_path / "o.csv"), "--move-done",
          str(tmp_path / "in" / "done")], "inside the watched folder"),
        (["batch", model, str(tmp_path / "in"), "--out", str(tmp_path / "t"), "--watch", "--ray", "local"],
         "leave out --ray"),
        (["batch", model, str(tmp_path / "in"), "--out", str(tmp_path / "t"), "--watch", "--jsonl"], "--jsonl"),
    ]
    for args, message in cases:
        r = CliRunner().invoke(app, args)
        assert isinstance(r.exception, EdgeclsError) and message in str(r.exception), (args, r.exception)
    r = edgecls("run", model, str(tmp_path / "in"), "--watch")  # as the user sees it: one line, exit 2
    assert r.returncode == 2 and r.stderr.startswith("error: --watch needs --csv FILE") and "Traceback" not in r.stderr


@pytest.mark.slow
def test_run_watch_classifies_arrivals_once_and_resumes(runtime_models, tmp_path):
    """A file written slowly is classified once, after its writer finished, with the scores ``run`` gives the
    finished file; SIGTERM ends the watch (143) with every row in the CSV; a restart classifies only what is new."""
    from edgecls.runtime.inference.classifier import Classifier

    model, drop, out = str(runtime_models.cnn), tmp_path / "in", tmp_path / "out.csv"
    write_image(drop / "early.png")
    proc = start_edgecls("run", model, str(drop), "--watch", "--csv", str(out), "--settle", "0.6", "--json")

    def rows() -> list[dict]:
        return list(csv.DictReader(out.open(newline=""))) if out.exists() else []

    wait_for(lambda: len(rows()) == 1)
    data = write_image(tmp_path / "slow.jpg", seed=4).read_bytes()
    (drop / "sub").mkdir()
    with open(drop / "sub" / "slow.jpg", "wb") as f:
        for i in range(5):  # a chunk every 0.3 s: never settled while it is written
            f.write(data[i * len(data) // 5 : (i + 1) * len(data) // 5])
            f.flush()
            time.sleep(0.3)
    wait_for(lambda: len(rows()) == 2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    got = {r["source"]: r for r in rows()}
    assert sorted(got) == [str(drop / "early.png"), str(drop / "sub" / "slow.jpg")]
    clf = Classifier(model)
    for source, row in got.items():
        assert row["error"] == "" and json.loads(row["top_k"]) == [p.to_dict() for p in clf.predict(source, 3)]
    assert [json.loads(line)["source"] for line in stdout.splitlines()] == list(got)
    assert "interrupted: 2 result(s), 0 error(s)" in stderr
    write_image(drop / "late.png", seed=7)
    proc = start_edgecls("run", model, str(drop), "--watch", "--csv", str(out), "--settle", "0.3", "--json")
    wait_for(lambda: len(rows()) == 3)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and [json.loads(line)["source"] for line in stdout.splitlines()] == [
        str(drop / "late.png")]
    assert sorted(r["source"] for r in rows()) == sorted([*got, str(drop / "late.png")])


def test_watch_console_prints_each_file_as_it_comes(capsys):
    """A watch never ends by itself: the console prints each row at once instead of holding a table for the end."""
    from edgecls.runtime.run.console_sinks import ConsoleSink

    held, streamed = ConsoleSink(2), ConsoleSink(2, stream_rows=True)
    held.result(_record("/drop/a.png"))
    assert capsys.readouterr().out == ""
    streamed.result(_record("/drop/b.png"))
    assert capsys.readouterr().out.startswith("/drop/b.png: circle 0.900  square 0.100")


def test_move_done_of_a_file_already_gone_is_no_error(tmp_path):
    root = tmp_path / "in"
    a = write_image(root / "a.png")
    a.unlink()  # deleted by someone else after it was classified
    assert move_done(a, root, tmp_path / "done") is None


def test_restart_moves_what_was_done_but_not_moved_and_classifies_a_new_file_of_that_name(runtime_models, tmp_path):
    """Killed after a file's row was durable but before it was moved: the restart moves it without a second row.
    A file that reuses the name of one moved earlier (another size/mtime) is new: it is classified."""
    import threading

    from edgecls.runtime.inference.classifier import Classifier
    from edgecls.runtime.run.csv_watch_sink import WatchCsvSink
    from edgecls.runtime.sources.sinks import MultiSink
    from edgecls.runtime.sources.source_loop import LoopOptions
    from edgecls.runtime.sources.watch_loop import watch_folders
    from edgecls.runtime.sources.watch_options import WatchOptions

    root, done, out = tmp_path / "in", tmp_path / "done", tmp_path / "out.csv"
    a, b = write_image(root / "a.png"), write_image(root / "b.png", seed=1)
    first = WatchCsvSink(out)  # the killed run: a's row durable, a not moved yet; b's row for an older version
    first.expect([key_of(a), FileKey(str(b), 1, 1)])
    first.result(_record(str(a)))
    first.result(_record(str(b)))
    first.commit()
    first._file.close()
    record, stop = WatchCsvSink(out), threading.Event()
    clf = Classifier(str(runtime_models.cnn))
    thread = threading.Thread(target=watch_folders, args=(clf, [root], record, MultiSink([record]), LoopOptions(),
                                                          WatchOptions(settle_s=0.1, move_done=done), stop))
    thread.start()
    wait_for(lambda: not b.exists())
    stop.set()
    thread.join(timeout=30)
    rows = list(csv.DictReader(out.open(newline="")))
    assert [r["source"] for r in rows] == [str(a), str(b), str(b)]  # a once; b's new version once more
    assert rows[2]["file_size"] == str(key_of(done / "b.png").size)
    assert sorted(p.name for p in done.iterdir()) == ["a.png", "b.png"] and list(root.iterdir()) == []
