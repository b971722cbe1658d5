"""A downloaded checkpoint must not run code: every command that loads one refuses a pickle that asks to.

The attack is real: a checkpoint that is a valid edgecls checkpoint in every field plus one object whose
``__reduce__`` calls ``os.system`` to create a marker file. Without the opt-in the marker never appears and the
command ends with one line naming ``--trust-checkpoint``; with it, the file loads (and the marker appears, which
is what the flag's help warns about).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_reliability import assert_one_clean_error, run_cli

from edgecls.runtime.errors import EdgeclsError
from edgecls.training.checkpoint import load_checkpoint, save_checkpoint


class _RunsCommand:
    """Pickles as a call to os.system(command): what a hostile checkpoint carries."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def _malicious_copy(source: Path, dest: Path, marker: Path) -> Path:
    """``source`` (an edgecls checkpoint) re-saved with one extra field that runs ``touch MARKER`` on load."""
    raw = torch.load(source, map_location="cpu", weights_only=True)
    raw["notes"] = _RunsCommand(f"touch {marker}")
    buf = io.BytesIO()
    torch.save(raw, buf)  # not save_checkpoint: it refuses anything but plain data
    dest.write_bytes(buf.getvalue())
    return dest


@pytest.fixture
def hostile_run(tiny_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of a real run directory whose best.pt and last.pt run code; -> (run dir, marker path)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    marker = tmp_path / "PWNED"
    for name in ("best.pt", "last.pt"):
        _malicious_copy(tiny_run / name, run / name, marker)
    return run, marker


def _refused(proc, marker: Path) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_clean_error(proc.stderr, "--trust-checkpoint", "posix.system")
    assert not marker.exists(), "the checkpoint ran code"


@pytest.mark.slow  # export subprocesses: 20 s at load 5-13
def test_export_refuses_a_checkpoint_that_runs_code(hostile_run, tmp_path):
    run, marker = hostile_run
    _refused(run_cli("export", str(run), "--out", str(tmp_path / "out")), marker)


@pytest.mark.slow  # eval subprocesses: 17 s at load 5-13
def test_eval_refuses_a_checkpoint_that_runs_code(hostile_run):
    run, marker = hostile_run
    _refused(run_cli("eval", str(run / "best.pt"), "builtin:shapes"), marker)


@pytest.mark.slow  # trains in a subprocess: 40 s at load 5-13
def test_train_resume_refuses_a_last_pt_that_runs_code(hostile_run):
    run, marker = hostile_run
    _refused(run_cli("train", "builtin:shapes", "--out", str(run), "--resume"), marker)


@pytest.mark.slow  # bench with its PyTorch baseline: 25 s at load 5-13
def test_bench_eager_baseline_refuses_a_checkpoint_that_runs_code(bench_models, tmp_path):
    marker = tmp_path / "PWNED"
    evil = _malicious_copy(bench_models.checkpoint, tmp_path / "evil.pt", marker)
    out = tmp_path / "bench.json"
    args = ["bench", str(bench_models.fp32), "--checkpoint", str(evil), "--runs", "2", "--threads", "1",
            "--no-compare", "--json-file", str(out)]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr  # the bench goes on; the eager row carries the refusal
    eager = [r for r in json.loads(out.read_text())["rows"] if r["label"].startswith("PyTorch eager")]
    assert len(eager) == 1 and "--trust-checkpoint" in (eager[0]["error"] or ""), eager
    assert not marker.exists(), "the checkpoint ran code in the measuring process"

    proc = run_cli(*args, "--trust-checkpoint")  # the opt-in reaches the measuring process
    assert proc.returncode == 0, proc.stderr
    eager = [r for r in json.loads(out.read_text())["rows"] if r["label"].startswith("PyTorch eager")]
    assert eager[0]["error"] is None and eager[0]["p50_ms"] > 0, eager
    assert marker.exists()


@pytest.mark.slow  # export and eval subprocesses: 12 s at load 5-13
def test_trust_checkpoint_is_the_way_around(hostile_run):
    run, marker = hostile_run
    proc = run_cli("eval", str(run / "best.pt"), "builtin:shapes", "--json", "--trust-checkpoint")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["top1"] > 0.4
    assert marker.exists()  # the flag did what its help says: ran code from the file


def test_a_corrupt_file_is_still_called_corrupt(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage" * 10)
    with pytest.raises(EdgeclsError, match="not a readable checkpoint"):
        load_checkpoint(bad)


@dataclasses.dataclass
class _Recipe:
    lr: float
    folder: Path


def test_what_edgecls_saves_loads_as_weights_only_with_exact_values(tmp_path, tiny_run):
    # A payload with the types a training loop may hand over: numpy scalars and arrays, a Path, a dataclass.
    src = load_checkpoint(tiny_run / "last.pt").raw
    payload = {k: v for k, v in src.items() if k not in ("format", "format_version")}
    lr = np.float64(0.1) / 3
    payload["extra"] = {"lr": lr, "steps": np.int64(7), "where": tmp_path, "recipe": _Recipe(lr=0.25, folder=tmp_path),
                        "mask": np.arange(4, dtype=np.float32), "tags": ("a", 2)}
    path = save_checkpoint(tmp_path / "c.pt", payload)
    raw = torch.load(path, map_location="cpu", weights_only=True)  # torch's own safe loader, no edgecls code
    extra = raw["extra"]
    assert extra["lr"] == float(lr) and type(extra["lr"]) is float
    assert extra["steps"] == 7 and type(extra["steps"]) is int
    assert extra["where"] == str(tmp_path) and extra["recipe"] == {"lr": 0.25, "folder": str(tmp_path)}
    assert torch.equal(extra["mask"], torch.arange(4, dtype=torch.float32)) and extra["tags"] == ("a", 2)
    # The optimizer and scheduler state (what --resume restores) come back bit for bit.
    assert raw["optimizer_state"]["param_groups"] == src["optimizer_state"]["param_groups"]
    for k, state in src["optimizer_state"]["state"].items():
        for name, value in state.items():
            assert torch.equal(raw["optimizer_state"]["state"][k][name], value)
    assert raw["scheduler_state"] == src["scheduler_state"]


def test_saving_an_object_that_would_need_code_is_a_programming_error():
    from edgecls.training.checkpoint import plain

    with pytest.raises(TypeError, match=r"checkpoint\['hook'\]: function"):
        plain({"hook": lambda: 0})
