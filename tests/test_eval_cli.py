"""`edgecls train` and `edgecls eval` end to end through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecls.cli import app

runner = CliRunner()


def test_eval_checkpoint_reports_metrics_and_writes_plots(tiny_run: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", str(tiny_run), "--json", "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["split"] == "test" and report["data"] == "builtin:shapes" and report["n"] == 375
    assert report["top5"] is None  # 5 classes: no top-5
    # top-1 is the accuracy of the model's own predictions on those images, computed here without evaluate()
    assert report["top1"] == pytest.approx(_accuracy_of_checkpoint(tiny_run), abs=1e-12)
    assert report["top1"] > 0.5  # tiny_run is well above chance (0.2): a broken label mapping would not be
    assert set(report["per_class"]) == {"circle", "square", "triangle", "star", "cross"}
    assert sum(map(sum, report["confusion"])) == 375
    # the test split is the one training held out, so the numbers match the run's own evaluation
    run_metrics = json.loads((tiny_run / "eval" / "metrics.json").read_text())
    assert abs(run_metrics["top1"] - report["top1"]) < 1e-9
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 1000


def _accuracy_of_checkpoint(run: Path) -> float:
    """Top-1 of run/best.pt on builtin:shapes' test split: torch forward on the runtime's preprocessing."""
    import numpy as np
    import torch

    from edgecls.data.load import load_data
    from edgecls.runtime.inference.preprocess import preprocess_batch
    from edgecls.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run)
    test = load_data("builtin:shapes", seed=0).test
    images = [test.load(i) for i in range(len(test))]
    labels = np.array([test.label(i) for i in range(len(test))])
    with torch.no_grad():
        logits = ckpt.build_model().eval()(torch.from_numpy(preprocess_batch(images, ckpt.contract)))
    return float((logits.argmax(1).numpy() == labels).mean())


def test_eval_on_a_folder_with_a_broken_image(tiny_run: Path, shapes_folder: Path, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(shapes_folder, data)
    (data / "circle" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = runner.invoke(app, ["eval", str(tiny_run), str(data), "--split", "all", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n"] == 150 and len(report["skipped"]) == 1 and "broken.jpg" in report["skipped"][0]


def test_train_cli_errors_are_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edgecls", "train", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
