"""Interruptions and hostile disks: SIGKILL mid-epoch, mid-checkpoint-write and mid-export; a full disk and
a read-only output directory.

The promises checked: a killed process never leaves a half-written artifact under a real name (every
visible ``.pt``/``.onnx``/``.json`` loads), ``edgecls train --resume`` ends with exactly the weights of an
uninterrupted run of the same seed, and a disk that cannot take the output is one ``error:`` line.

Training runs are tiny (cnn, 32 px, builtin:shapes, 2 epochs of 2 batches), so the whole dance takes
seconds; the uninterrupted reference run trains while the interrupted one is being killed and resumed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from fixtures_interrupt import HOLD_AT_WRITE, DirWatch, held_edgecls_cmd, held_env, kill_now
from fixtures_reliability import (
    assert_one_clean_error,
    check_artifacts,
    is_temporary,
    run_cli,
    tmpfs,
)

from edgecls.runtime.atomic import atomic_write_bytes
from edgecls.runtime.errors import EdgeclsError
from edgecls.training.checkpoint import load_checkpoint

CONFIG = {"data": "builtin:shapes", "arch": "cnn", "epochs": 2, "input_size": 32, "batch_size": 32,
          "max_train_batches": 2, "seed": 0, "warmup_epochs": 0.3}
_TRAIN = ("import json, sys\nfrom edgecls.training.config import TrainConfig\n"
          "from edgecls.training.train import train\n"
          "train(TrainConfig(**json.loads(sys.argv[1])), show_progress=False)\n")


def start_training(out: Path, after: str | None = None) -> subprocess.Popen:
    """The library's train() in its own process (the CLI has no --max-train-batches; config.json keeps it),
    held for good once it has published the file named ``after`` (fixtures_reliability.HOLD_AT_WRITE)."""
    return subprocess.Popen([sys.executable, "-c", HOLD_AT_WRITE + _TRAIN, json.dumps({**CONFIG, "out": str(out)})],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=held_env(after=after))


def start_resume(out: Path, before: str | None = None) -> subprocess.Popen:
    """What a user types after a crash: ``edgecls train DATA --out RUN --resume``; held for good just before it
    publishes the file named ``before``."""
    return _start_cli("train", "builtin:shapes", "--out", str(out), "--resume", before=before)


@dataclass
class KillStory:
    reference: Path  # uninterrupted run
    run: Path  # killed twice, resumed twice
    after_mid_epoch_kill: dict[str, str]
    epoch_after_mid_epoch_kill: int
    after_write_kill: dict[str, str]
    epoch_after_write_kill: int
    killed_while_writing: str
    final_stderr: str
    kill_status: tuple[int, int]


def _last_epoch(run: Path) -> int:
    return int(load_checkpoint(run / "last.pt").raw["epoch"])


@pytest.fixture(scope="module")
def kill_story(tmp_path_factory: pytest.TempPathFactory) -> KillStory:
    root = tmp_path_factory.mktemp("interrupt")
    reference, run = root / "reference", root / "run"
    reference.mkdir()
    run.mkdir()
    ref_proc = start_training(reference)

    # 1. SIGKILL mid-epoch: history.json is published at the end of epoch 1 (held there: nothing of epoch 2 written).
    watch = DirWatch(run)
    proc = start_training(run, after="history.json")
    watch.wait_for(lambda name: name == "history.json", proc)
    status_1 = kill_now(proc)
    after_1, epoch_1 = check_artifacts(run), _last_epoch(run)

    # 2. Resume, and SIGKILL once last.pt's temporary file is created (mid checkpoint write: held before the rename).
    proc = start_resume(run, before="last.pt")
    written = watch.wait_for(lambda name: name.startswith(".last.pt.") and is_temporary(name), proc)
    status_2 = kill_now(proc)
    after_2, epoch_2 = check_artifacts(run), _last_epoch(run)
    watch.close()

    # 3. Resume again, to the end.
    proc = start_resume(run)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    _, ref_err = ref_proc.communicate(timeout=180)
    assert ref_proc.returncode == 0, ref_err[-3000:]
    return KillStory(reference, run, after_1, epoch_1, after_2, epoch_2, written, err, (status_1, status_2))


@pytest.mark.slow  # kill_story: three training processes, 51 s at load 5-13
def test_kill_mid_epoch_leaves_only_complete_artifacts(kill_story: KillStory) -> None:
    assert kill_story.kill_status[0] == -9
    files = kill_story.after_mid_epoch_kill
    assert {"best.pt", "last.pt", "config.json", "contract.json", "history.json"} <= set(files)
    assert "summary.json" not in files  # the run really was cut short
    assert kill_story.epoch_after_mid_epoch_kill == 0  # the resume point is the last finished epoch


@pytest.mark.slow  # kill_story
def test_kill_during_checkpoint_write_keeps_the_previous_checkpoint(kill_story: KillStory) -> None:
    assert kill_story.kill_status[1] == -9
    files = kill_story.after_write_kill
    assert files.get(kill_story.killed_while_writing) == "temporary"  # the half-written bytes are hidden
    assert files["last.pt"] == ".pt"  # ... and last.pt is the previous, complete one (it loaded)
    assert kill_story.epoch_after_write_kill == 0


@pytest.mark.slow  # kill_story
def test_resume_matches_an_uninterrupted_run_of_the_same_seed(kill_story: KillStory) -> None:
    assert "resuming" in kill_story.final_stderr
    a, b = load_checkpoint(kill_story.reference / "last.pt"), load_checkpoint(kill_story.run / "last.pt")
    assert a.raw["epoch"] == b.raw["epoch"] == CONFIG["epochs"] - 1
    assert a.model_state.keys() == b.model_state.keys()
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    assert [h["val_acc"] for h in a.raw["history"]] == [h["val_acc"] for h in b.raw["history"]]
    best_a = load_checkpoint(kill_story.reference / "best.pt")
    assert best_a.raw["epoch"] == load_checkpoint(kill_story.run / "best.pt").raw["epoch"]


@pytest.mark.slow  # kill_story
def test_finished_run_has_no_leftovers(kill_story: KillStory) -> None:
    """The re-run's writes removed the temporary files the killed processes could not."""
    files = check_artifacts(kill_story.run)
    assert not [f for f, kind in files.items() if kind == "temporary"], files
    assert "summary.json" in files


# --- disks that cannot take the output --------------------------------------------------------------------
def fill(disk: Path) -> None:
    """Fill a small file system to the last block."""
    import os

    fd = os.open(disk / "filler.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def test_atomic_write_on_a_full_disk_keeps_the_old_file(full_disk: Path) -> None:
    target = full_disk / "report.json"
    atomic_write_bytes(target, b'{"old": true}\n')
    with pytest.raises(EdgeclsError, match=re.escape(str(target)) + ".*No space left on device"):
        atomic_write_bytes(target, b"x" * 1_000_000)
    assert target.read_bytes() == b'{"old": true}\n'
    assert sorted(p.name for p in full_disk.iterdir()) == ["report.json"]  # the temporary file is gone


@pytest.mark.slow  # two training processes: 16 s at load 5-13
def test_train_onto_full_and_read_only_disks(full_disk: Path, read_only_dir: Path) -> None:
    fill(full_disk)
    cases = {full_disk / "run": "No space left on device", read_only_dir / "run": "Read-only file system"}
    procs = {out: _start_cli("train", "builtin:shapes", "--arch", "cnn", "--input-size", "32", "--epochs", "1",
                             "--out", str(out)) for out in cases}
    for out, proc in procs.items():
        r = _finish(proc)
        assert r.returncode == 2, r.stderr[-2000:]
        assert_one_clean_error(r.stderr, str(out), cases[out])
        if out.exists():
            assert not [f for f, kind in check_artifacts(out).items() if kind == "temporary"]


@dataclass
class ExportStory:
    killed_out: Path
    after_kill: dict[str, str]
    kill_status: int
    results: dict[str, subprocess.CompletedProcess[str]]  # again / full / read_only
    outs: dict[str, Path]


def _start_cli(*args: str, before: str | None = None) -> subprocess.Popen:
    """``edgecls ARGS`` in the background; held for good just before it publishes the file named ``before``."""
    return subprocess.Popen(held_edgecls_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=held_env(before=before))


def _finish(proc: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def export_story(kill_story: KillStory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportStory]:
    """SIGKILL an export once model.onnx's temporary appears (held before its rename); then, side by side
    (each export pays its own interpreter and torch start, so running them together saves wall time): export
    again into the same folder, export onto a full disk, export into a read-only folder."""
    out = tmp_path_factory.mktemp("export") / "export"
    out.mkdir()
    watch = DirWatch(out)
    proc = _start_cli("export", str(kill_story.reference), "--out", str(out), before="model.onnx")
    try:
        watch.wait_for(lambda name: name.startswith(".model.onnx.") and is_temporary(name), proc, timeout=120)
    finally:
        watch.close()
    status = kill_now(proc)
    after = check_artifacts(out)
    with tmpfs("256k") as full, tmpfs("64k", read_only=True) as ro:
        fill(full)
        outs = {"again": out, "full": full / "export", "read_only": ro / "export"}
        procs = {k: _start_cli("export", str(kill_story.reference), "--out", str(o)) for k, o in outs.items()}
        results = {k: _finish(p) for k, p in procs.items()}
        leftovers = {k: check_artifacts(o) if o.exists() else {} for k, o in outs.items() if k != "again"}
        yield ExportStory(out, after, status, results, outs)
    assert not any(leftovers.values()), leftovers


@pytest.mark.slow  # export_story: four export processes, 56 s at load 5-13
def test_kill_mid_export_leaves_no_model(export_story: ExportStory) -> None:
    assert export_story.kill_status == -9
    files = export_story.after_kill
    assert "model.onnx" not in files and any(kind == "temporary" for kind in files.values()), files


@pytest.mark.slow  # export_story
def test_export_again_after_the_kill(export_story: ExportStory, kill_story: KillStory) -> None:
    r = export_story.results["again"]
    assert r.returncode == 0, r.stderr[-3000:]
    files = check_artifacts(export_story.killed_out)  # model.onnx passes onnx's full check
    assert "model.onnx" in files and not [f for f, kind in files.items() if kind == "temporary"], files
    from edgecls.runtime.inference.classifier import Classifier

    labels = load_checkpoint(kill_story.reference / "best.pt").contract.labels
    assert Classifier(export_story.killed_out / "model.onnx").labels == labels


@pytest.mark.parametrize(("case", "why"), [("full", "No space left on device"),
                                           ("read_only", "Read-only file system")])
@pytest.mark.slow  # export_story
def test_export_onto_a_disk_that_cannot_take_it(export_story: ExportStory, case: str, why: str) -> None:
    r = export_story.results[case]
    assert r.returncode == 2, r.stderr[-2000:]
    assert_one_clean_error(r.stderr, str(export_story.outs[case]), why)


def test_run_csv_into_a_read_only_folder_is_refused_before_work(runtime_models, odd_images,
                                                                read_only_dir: Path) -> None:
    r = run_cli("run", str(runtime_models.cnn), str(odd_images.good["jpeg"]), "--csv",
                str(read_only_dir / "out.csv"))
    assert r.returncode == 2 and r.stdout == ""
    assert_one_clean_error(r.stderr, str(read_only_dir / "out.csv"), "Read-only file system")


def test_run_csv_on_a_full_disk_is_one_error_line(runtime_models, odd_images, full_disk: Path) -> None:
    """Found by this suite (a traceback, exit 1) and fixed in 57d5b5d, in what is now runtime/run/csv_sink.py."""
    fill(full_disk)
    out = full_disk / "out.csv"
    r = run_cli("run", str(runtime_models.cnn), str(odd_images.root), "--csv", str(out), "--json")
    assert r.returncode == 2
    assert_one_clean_error(r.stderr, str(out), "No space left on device")
    assert not out.exists() and sorted(p.name for p in full_disk.iterdir()) == ["filler.bin"]
