"""`edgecls demo` end to end with tiny settings: every step runs for real and the report is complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecls.cli import app


@pytest.mark.slow  # the whole demo: 63 s at load 5-13
def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--data", "builtin:shapes", "--arch", "cnn",
                                      "--epochs", "1", "--bench-runs", "10", "--no-fp16"])
    assert result.exit_code == 0, result.output
    for name in ("run/best.pt", "run/curves.png", "run/eval/confusion.png", "export/model.onnx",
                 "export/model.int8.onnx", "export/quantization_report.json", "bench.json", "latency.png",
                 "accuracy_vs_speed.png", "report.md", "report.html"):
        assert (out / name).is_file(), name
    bench = json.loads((out / "bench.json").read_text())
    engines = {r["engine"] for r in bench["rows"] if not r.get("error")}
    assert {"onnxruntime", "pytorch-eager"} <= engines
    report = (out / "report.md").read_text()
    for variant in ("PyTorch eager", "ORT fp32", "ORT int8"):
        assert variant in report
    assert "edgecls run" in result.output and "--camera 0" in result.output  # the next commands
    assert len(list((out / "samples").glob("*.png"))) == 8
    # summary.json: the table's numbers, machine-readable, and the machine they came from
    summary = json.loads((out / "summary.json").read_text())
    variants = {v["name"]: v for v in summary["variants"]}
    assert set(variants) == {"PyTorch eager", "ORT fp32", "ORT int8"}
    for v in variants.values():
        assert f"| {v['name']} | {100 * v['accuracy']:.2f} |" in report  # the same numbers as report.md
    run_summary = json.loads((out / "run" / "summary.json").read_text())
    assert variants["PyTorch eager"]["accuracy"] == run_summary["test_top1"]
    assert summary["environment"]["cpu_model"] and summary["environment"]["isa"]
    assert summary["seconds"]["total"] == sum(v for k, v in summary["seconds"].items() if k != "total")
    assert summary["options"]["data"] == "builtin:shapes" and summary["epochs_trained"] == 1
    # a second demo replaces the first; a folder the demo did not make is refused
    other = tmp_path / "precious"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    refused = CliRunner().invoke(app, ["demo", "--out", str(other), "--epochs", "1"])
    assert refused.exit_code != 0 and (other / "keep.txt").exists()
    assert "not made by `edgecls demo`" in str(refused.exception)

