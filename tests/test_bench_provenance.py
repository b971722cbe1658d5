"""Bench finds what a new user expects it to: the source checkpoint of an export made with ``--out`` elsewhere
(from the export's own report), and the fp32 reference of an int8 file in another folder (by the checkpoint
hash in the contract's provenance, not by folder)."""

from __future__ import annotations

import json
import shutil

from edgecls.runtime.bench.baselines.torch_eager import installed_torch_baselines
from edgecls.runtime.bench.sweep import run_benchmark
from edgecls.runtime.bench.targets import expand_models, model_targets, run_checkpoints


def test_export_out_elsewhere_still_finds_its_checkpoint(exported_tiny, tiny_run):
    report = json.loads((exported_tiny / "export_report.json").read_text())
    source = report["source_checkpoint"]
    assert source and (tiny_run / "best.pt").resolve().samefile(source)
    assert not (exported_tiny.parent / "best.pt").exists()  # nothing beside the export to guess from
    files = expand_models([exported_tiny])
    baselines, notes = installed_torch_baselines(model_targets(files), None, run_checkpoints(files))
    assert [b.label for b in baselines] == ["PyTorch eager (best.pt)"], notes
    assert not any("not found" in n for n in notes)


def test_int8_in_another_folder_is_compared_with_its_fp32(bench_models, tmp_path):
    other = tmp_path / "other" / "dir"
    other.mkdir(parents=True)
    int8 = shutil.copy(bench_models.int8, other / "model.int8.onnx")
    fp32 = shutil.copy(bench_models.fp32, tmp_path / "fp32.onnx")
    result = run_benchmark([fp32, int8], threads=[1], runs=3, warmup=1, isolate=False, data_dir=bench_models.images)
    by_label = {r.label: r for r in result.rows}
    assert by_label["model.int8.onnx"].family == by_label["fp32.onnx"].family
    assert by_label["model.int8.onnx"].speedup is not None
    assert by_label["model.int8.onnx"].reference == "fp32.onnx"
    # and agreement with the fp32 file on onnxruntime CPU, measured on the same (real) images
    assert by_label["fp32.onnx"].agreement == 1.0 and by_label["fp32.onnx"].max_abs_diff == 0.0
    assert by_label["model.int8.onnx"].agreement is not None and by_label["model.int8.onnx"].max_abs_diff > 0
