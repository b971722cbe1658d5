"""Benchmark environment and reports: fields recorded, JSON/CSV/Markdown/PNG written, the table flags."""

from __future__ import annotations

import csv
import json
import sys
from importlib import metadata
from pathlib import Path

import onnxruntime as ort
import pytest

from edgecls.runtime.bench.env import collect_environment, cpu_slug, environment_slug, isa_slug
from edgecls.runtime.bench.plot import write_plot
from edgecls.runtime.bench.report import print_report, to_markdown, write_markdown
from edgecls.runtime.bench.result_files import CSV_FIELDS, load_json, write_csv, write_json
from edgecls.runtime.bench.rows import BenchResult, BenchRow, compute_ratios
from edgecls.runtime.bench.sweep import run_benchmark
from edgecls.runtime.errors import MissingExtraError


@pytest.fixture(scope="module")
def measured(bench_models) -> BenchResult:
    """fp32 + int8 with accuracy (in-process: fast), plus a broken model's error row."""
    return run_benchmark(
        [bench_models.fp32, bench_models.int8, bench_models.broken],
        data_dir=bench_models.images,
        runs=4,
        warmup=1,
        threads=[1],
        isolate=False,
    )


def test_environment_is_read_from_this_machine():
    env = collect_environment()
    flags = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    assert env.cpu_model and env.logical_cores >= env.physical_cores >= 1 and env.usable_cores >= 1
    assert set(env.isa) <= flags or not flags
    for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "asimddp"):
        assert (f in env.isa) == (f in flags)
    assert (env.int8_isa == "x86-vnni") == bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags)
    assert (env.int8_isa == "x86-avx2") == ("avx2" in flags and not {"avx512_vnni", "avx_vnni", "amx_int8"} & flags)
    assert env.versions["onnxruntime"] == ort.__version__
    assert env.versions["torch"] == metadata.version("torch")
    assert env.versions["numpy"] and env.versions["opencv"]
    assert "CPUExecutionProvider" in env.onnxruntime_providers
    slug = environment_slug(env)
    assert f"_ort{ort.__version__}_" in slug and slug.endswith(env.timestamp[:10]) and " " not in slug


@pytest.mark.parametrize(
    ("cpu_model", "isa", "machine", "expected"),
    [
        ("Intel(R) Xeon(R) Processor", ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8"], "x86_64",
         "intel-xeon-avx512-vnni-amx-bf16"),
        ("AMD EPYC Processor", ["avx2", "fma"], "x86_64", "amd-epyc-avx2"),
        ("Intel(R) Core(TM) i5-1235U @ 1.30GHz", ["avx2", "avx_vnni"], "x86_64", "intel-core-i5-1235u-avx2-vnni"),
        ("", ["neon", "asimd", "asimddp"], "aarch64", "aarch64-neon-dotprod"),
    ],
)
def test_cpu_and_isa_slugs_name_results_files(cpu_model, isa, machine, expected):
    """One naming for every results file: the CPU, then the ISA that decides int8/bf16 speed."""
    import dataclasses

    env = dataclasses.replace(collect_environment(), cpu_model=cpu_model, isa=isa, machine=machine)
    assert f"{cpu_slug(env)}-{isa_slug(env)}" == expected
    assert environment_slug(env).startswith(f"{cpu_slug(env)}_ort")


def test_a_csv_row_carries_every_field_its_json_row_has_but_the_samples(measured, tmp_path):
    """The CSV lacked the precision (OpenVINO's f32 and bf16 rows of one file were two identical-looking CSV rows),
    the engine runtime, the family and agreement's n: its columns are now the row's own fields."""
    assert {"precision", "engine_runtime", "family", "agreement_images", "e2e_decode_errors"} <= set(CSV_FIELDS)
    with open(write_csv(measured, tmp_path / "b.csv"), newline="") as f:
        records = list(csv.DictReader(f))
    for record, row in zip(records, measured.rows, strict=True):
        d = row.to_dict(samples=False)
        for name in set(d) - {"e2e", "node_placement", "providers_used", "warnings"}:
            assert record[name] == ("" if d[name] is None else str(d[name])), name
        assert record["e2e_images"] == (str(row.e2e.images) if row.e2e else "")


def test_json_csv_markdown_and_plot_are_written(measured, tmp_path):
    assert [r.ok for r in measured.rows] == [True, True, False]
    paths = {
        "json": write_json(measured, tmp_path / "out" / "b.json"),
        "csv": write_csv(measured, tmp_path / "b.csv"),
        "md": write_markdown(measured, tmp_path / "b.md"),
        "png": write_plot(measured, tmp_path / "b.png"),
    }
    doc = json.loads(paths["json"].read_text())
    assert set(doc) == {"environment", "settings", "rows"} and len(doc["rows"]) == 3
    assert doc["environment"]["cpu_model"] and doc["rows"][0]["samples_ms"]
    again = load_json(paths["json"])
    assert [r.to_dict() for r in again.rows] == [r.to_dict() for r in measured.rows]
    assert again.rows[0].e2e.images == 9

    with open(paths["csv"], newline="") as f:
        records = list(csv.DictReader(f))
    assert tuple(records[0]) == CSV_FIELDS and len(records) == 3
    assert records[1]["variant"] == "int8" and float(records[1]["speedup"]) > 0
    assert records[0]["e2e_images"] == "9" and "cannot load" in records[2]["error"]

    md = paths["md"].read_text()
    assert "| model |" in md and "ref" in md and "x fp32" in md and "cannot load" in md
    assert "End-to-end, per image" in md and measured.environment.cpu_model in md
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_plot_without_matplotlib_names_what_to_install(measured, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match="matplotlib"):
        write_plot(measured, tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists()


def test_table_flags_fallback_errors_and_the_reference_row():
    from rich.console import Console

    def row(label, **kw):
        base = dict(
            model=label,
            engine="onnxruntime",
            variant="fp32",
            family="A",
            provider="CPUExecutionProvider",
            batch=1,
            threads=1,
            p50_ms=10.0,
            mean_ms=10.0,
            std_ms=1.0,
        )
        return BenchRow(label=label, **{**base, **kw})

    rows = [
        row("model.onnx", accuracy=0.9),
        row("model.int8.onnx", variant="int8", p50_ms=5.0, accuracy=0.85),
        row(
            "model.onnx",
            provider="CUDAExecutionProvider",
            fallback=True,
            providers_used=["CPUExecutionProvider"],
        ),
        row("bad.onnx", family="B", error="bad.onnx: cannot load model", p50_ms=None),
    ]
    compute_ratios(rows)
    result = BenchResult(collect_environment(), rows)
    console = Console(record=True, width=300)
    print_report(result, console)
    text = console.export_text()
    assert "ref" in text and "2.00x" in text and "85.0 (-5.0)" in text
    assert "ort CUDA -> CPU (fallback)" in text
    assert "error: bad.onnx: cannot load model" in text  # one spelling of error: everywhere
    md = to_markdown(result)
    assert "(fallback)" in md and "2.00x" in md


def test_agreement_on_noise_is_said_and_on_images_is_not():
    """Without --data the agreement column is measured on noise, where an int8 file legitimately disagrees with
    fp32: the table and the Markdown must say so, or a user reads a good int8 model as broken."""
    from rich.console import Console

    def row(variant: str, inputs: str, agreement: float) -> BenchRow:
        return BenchRow(
            label=f"model.{variant}.onnx", model="m", engine="onnxruntime", variant=variant, family="A",
            provider="CPUExecutionProvider", batch=1, threads=1, p50_ms=5.0, mean_ms=5.0, std_ms=0.1,
            agreement=agreement, agreement_inputs=inputs,
        )

    noise = "16 noise tensors"
    noisy = BenchResult(collect_environment(), [row("fp32", noise, 1.0), row("int8", noise, 0.06)])
    console = Console(record=True, width=300)
    print_report(noisy, console)
    assert "measured on 16 noise tensors" in console.export_text()
    assert "pass --data DIR" in to_markdown(noisy)

    real = BenchResult(collect_environment(), [row("fp32", "32 images", 1.0), row("int8", "32 images", 0.97)])
    console = Console(record=True, width=300)
    print_report(real, console)
    assert "noise" not in console.export_text() and "noise" not in to_markdown(real)
