"""``edgecls bench``: directories expand to their variants, baselines join, reports are written."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.runtime.bench.targets import expand_models, run_checkpoints
from edgecls.runtime.errors import EdgeclsError


@pytest.mark.slow  # a process per configuration, baselines: 23 s at load 5-13
def test_bench_an_export_directory_with_baselines_and_reports(bench_models, tmp_path):
    out = tmp_path / "reports"
    args = [
        "bench",
        str(bench_models.export_dir),
        "--batch-size",
        "1",
        "--threads",
        "1",
        "--runs",
        "3",
        "--warmup",
        "1",
        "--data",
        str(bench_models.images),
        "--json-file",
        str(out / "b.json"),
        "--csv",
        str(out / "b.csv"),
        "--markdown",
        str(out / "b.md"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    doc = json.loads((out / "b.json").read_text())
    labels = [r["label"] for r in doc["rows"]]
    assert labels == ["model.onnx", "model.int8.onnx", "OpenCV DNN (model.onnx)", "PyTorch eager (best.pt)"]
    assert all(r["error"] is None for r in doc["rows"]), [r["error"] for r in doc["rows"]]
    assert all(r["accuracy_images"] == 9 for r in doc["rows"])
    assert (out / "b.csv").is_file() and (out / "b.md").is_file()
    assert "x fp32" in result.output and "wrote" in result.output


def test_a_run_directory_means_its_export_folder_and_checkpoint(bench_models, tmp_path):
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    for f in (bench_models.fp32, bench_models.int8):
        shutil.copy(f, run / "export" / f.name)
    shutil.copy(bench_models.checkpoint, run / "best.pt")
    models = expand_models([run])
    assert [m.name for m in models] == ["model.int8.onnx", "model.onnx"]
    assert run_checkpoints(models) == [run / "best.pt"]
    with pytest.raises(EdgeclsError, match="no such model"):
        expand_models([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeclsError, match="no .onnx models"):
        expand_models([tmp_path / "empty"])


def test_bad_options_are_one_line_errors(bench_models):
    def refusal(*args: str) -> str:  # typer's error box, its lines joined
        result = CliRunner().invoke(app, ["bench", str(bench_models.fp32), *args])
        assert result.exit_code == 2, result.output
        return " ".join(result.output.replace("│", " ").split())

    assert "'--batch-size': '1,x': takes integers >= 1, comma-separated" in refusal("--batch-size", "1,x")
    assert "'--precision': 'f32,fp64': takes f32, bf16 or f16, comma-separated" in refusal("--precision", "f32,fp64")


def test_nothing_measurable_exits_nonzero(bench_models):
    result = CliRunner().invoke(app, ["bench", str(bench_models.broken), "--runs", "2", "--threads", "1"])
    assert result.exit_code == 1 and "cannot load" in result.output


def test_json_prints_the_result_document_alone_on_stdout(bench_models):
    args = ["bench", str(bench_models.fp32), "--runs", "2", "--warmup", "0", "--threads", "1", "--no-baselines",
            "--no-compare", "--in-process", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    doc = json.loads(result.stdout)  # nothing but the document: no table, no progress
    assert [(r["label"], r["runs"], r["error"]) for r in doc["rows"]] == [("model.onnx", 2, None)]
    assert doc["environment"]["int8_isa"] and doc["settings"]["warmup"] == 0
