"""The watched-folder goal, end to end: 500 files arrive (written in place at once, written slowly in chunks, written
elsewhere and renamed in, a quarter in sub-folders) while ``run --watch`` / ``batch --watch`` classifies them, and
the watcher is killed with SIGKILL twice on the way and restarted. Each file must have exactly one row in the
output, with the scores a one-shot ``run`` of the finished folder gives it (a half-read file would fail to decode
or score otherwise). Runs benchmarks/watch_folder.py, which checks and reports exactly that."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fixtures_runtime import REPO


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "batch"])
def test_500_files_each_classified_once_across_two_kills(command, runtime_models, tmp_path):
    if command == "batch":
        pytest.importorskip("pyarrow")
    out = tmp_path / "result.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "watch_folder.py"), "--command", command, "--model",
           str(runtime_models.cnn), "--files", "500", "--seconds", "12", "--settle", "0.5", "--kills", "2",
           "--timeout", "240", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert len(result["kills_after_files"]) == 2  # killed twice, mid-drop (after about 166 and 333 files)
    assert result["kinds"] == {"copy": 167, "slow": 167, "renamed": 166} and result["in_sub_folders"] == 125
    assert result["rows"] == 500 and result["duplicates"] == 0 and result["missing"] == 0 and result["extra"] == 0
    assert result["mismatched"] == 0 and result["error_rows"] == 0
    assert result["exit_status"] == 143  # stopped by SIGTERM, cleanly
