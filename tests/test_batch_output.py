"""``edgecls batch --out`` (issue #20, item 7): links, earlier results and concurrent jobs are refused with exit 2
and one line, before any work; an earlier table is replaced only with ``--overwrite``.

Exit 1 means "table written, some error rows", so a job that wrote nothing must never end with 1 (it once did,
with a traceback, for each case below). Real ``python -m edgecls batch`` processes; pyarrow reads the tables.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from fixtures_folders import colour_model, start, write_images
from fixtures_reliability import assert_one_clean_error, run_cli

pq = pytest.importorskip("pyarrow.parquet")

N = 6


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return colour_model(tmp_path_factory.mktemp("model") / "colour.onnx")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    write_images(folder, N)
    return folder


def _batch(model: Path, photos: Path, out: Path, *flags: str):
    return run_cli("batch", str(model), str(photos), "--out", str(out), *flags, timeout=60)


def _refused(proc, *fragments: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    return assert_one_clean_error(proc.stderr, *fragments)


def test_a_dangling_link_as_out_is_refused(model: Path, photos: Path, tmp_path: Path):
    out = tmp_path / "results"
    out.symlink_to(tmp_path / "nowhere")
    _refused(_batch(model, photos, out), "--out", "dangling symbolic link")
    assert out.is_symlink() and not (tmp_path / "nowhere").exists()


def test_a_link_to_a_folder_as_out_is_refused(model: Path, photos: Path, tmp_path: Path):
    (tmp_path / "real").mkdir()
    out = tmp_path / "results"
    out.symlink_to(tmp_path / "real")
    _refused(_batch(model, photos, out), "--out", "symbolic link to")
    assert out.is_symlink() and not any((tmp_path / "real").iterdir())


def test_an_existing_jsonl_is_kept_unless_overwrite(model: Path, photos: Path, tmp_path: Path):
    out = tmp_path / "results"
    (tmp_path / "results.jsonl").write_text("precious\n")
    _refused(_batch(model, photos, out, "--jsonl"), "results.jsonl", "--overwrite")
    assert (tmp_path / "results.jsonl").read_text() == "precious\n" and not out.exists()
    done = _batch(model, photos, out, "--jsonl", "--overwrite")
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == N


@pytest.mark.slow  # batch subprocesses: 16 s at load 5-13
def test_overwrite_replaces_an_earlier_table_but_never_other_files(model: Path, photos: Path, tmp_path: Path):
    out = tmp_path / "results"
    assert _batch(model, photos, out).returncode == 0
    first = sorted(p.name for p in out.iterdir())
    _refused(_batch(model, photos, out), "already exists", "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == first
    again = _batch(model, photos, out, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert pq.read_table(out).num_rows == N
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".results.") and p.name.endswith(".old")]
    (out / "notes.txt").write_text("mine\n")  # no longer only a table: --overwrite must not delete it
    _refused(_batch(model, photos, out, "--overwrite"), "not replacing")
    assert (out / "notes.txt").read_text() == "mine\n"


def test_a_job_is_refused_while_another_holds_the_lock(model: Path, photos: Path, tmp_path: Path):
    out = tmp_path / "results"
    lock = tmp_path / ".results.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running job holds it
        _refused(_batch(model, photos, out), "another edgecls batch job", str(lock))
        assert not out.exists()
    finally:
        os.close(fd)
    assert _batch(model, photos, out).returncode == 0  # released: the next job runs


def test_two_concurrent_jobs_on_one_out_give_one_table_and_one_clean_refusal(model: Path, tmp_path: Path):
    photos = tmp_path / "photos"
    write_images(photos, 300)  # a job long enough (seconds) for the second to start while it runs
    out = tmp_path / "results"
    jobs = [start("batch", str(model), str(photos), "--out", str(out), "--batch-size", "4") for _ in range(2)]
    results = []
    for job in jobs:
        stdout, stderr = job.communicate(timeout=120)
        results.append((job.returncode, stderr))
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refusal = next(err for code, err in results if code == 2)
    # Which message depends on timing: the lock while the other runs, or the finished table after it.
    line = assert_one_clean_error(refusal, "--out")
    assert "another edgecls batch job" in line or "already exists" in line
    assert pq.read_table(out).num_rows == 300
