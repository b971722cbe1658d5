"""edgecls.runtime.bench (sweep, measuring process, targets, baselines): rows for every configuration, error
rows, fallback, end-to-end stages, baselines.

Behaviour only, never speed: tiny 32 px models, a handful of runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgecls.runtime.bench.baselines.opencv_dnn import opencv_baselines
from edgecls.runtime.bench.rows import (
    CPU_PROVIDER,
    ENGINE_OPENCV,
    ENGINE_ORT,
    ENGINE_TORCH,
    BenchError,
    BenchRow,
    compute_ratios,
)
from edgecls.runtime.bench.sweep import run_benchmark
from edgecls.runtime.bench.targets import family_of, model_targets, variant_of

FAST = {"runs": 5, "warmup": 2, "threads": [1]}


def _row(rows: list[BenchRow], label: str, provider: str = CPU_PROVIDER, batch: int | None = 1) -> BenchRow:
    found = [r for r in rows if r.label == label and r.provider == provider and r.batch == batch]
    assert len(found) == 1, [(r.label, r.provider, r.batch) for r in rows]
    return found[0]


def test_every_configuration_is_measured_in_its_own_process(bench_models):
    result = run_benchmark([bench_models.fp32, bench_models.int8], batches=[1, 2], **FAST)
    assert len(result.rows) == 4 and all(r.ok for r in result.rows), [r.error for r in result.rows]
    for r in result.rows:
        assert r.isolated and r.runs == 5 and len(r.samples_ms) == 5 and r.warmup == 2
        assert r.min_ms <= r.p50_ms <= r.p90_ms <= r.p99_ms <= r.max_ms
        # The statistics are those of the samples themselves (sample std, as LatencyStats documents).
        assert r.mean_ms == pytest.approx(np.mean(r.samples_ms), rel=1e-3)
        assert r.std_ms == pytest.approx(np.std(r.samples_ms, ddof=1), rel=1e-3, abs=1e-4)
        assert r.min_ms == pytest.approx(min(r.samples_ms), abs=1e-3)
        assert r.max_ms == pytest.approx(max(r.samples_ms), abs=1e-3)
        assert r.throughput_ips == pytest.approx(r.batch * 5 / (sum(r.samples_ms) / 1000), rel=1e-3)
        assert r.session_create_ms > 0 and r.first_run_ms > 0 and r.import_ms is not None and r.import_ms > 0
        # A fresh process: the model load itself adds resident memory, and the row's figure is that difference.
        assert r.peak_rss_mb > r.rss_before_load_mb > 0
        assert r.model_rss_mb == pytest.approx(r.peak_rss_mb - r.rss_before_load_mb)
        assert r.providers_used == [CPU_PROVIDER] and not r.fallback
        assert r.threads == 1
    fp32, int8 = _row(result.rows, "model.onnx", batch=2), _row(result.rows, "model.int8.onnx", batch=2)
    assert (fp32.variant, int8.variant) == ("fp32", "int8")
    assert fp32.model_size_mb == pytest.approx(bench_models.fp32.stat().st_size / 2**20)
    assert fp32.speedup == 1.0 and fp32.reference == "model.onnx"
    assert int8.speedup == pytest.approx(fp32.p50_ms / int8.p50_ms)  # same batch, same threads
    assert result.settings["isolated_subprocess_per_config"] is True


def test_bad_model_provider_and_batch_become_error_rows_and_the_rest_is_measured(bench_models):
    result = run_benchmark(
        [bench_models.fp32, bench_models.fixed, bench_models.broken],
        providers=["cpu", "nosuch", "cuda"],
        batches=[1, 2],
        runs=3,
        warmup=1,
        threads=[1],
    )
    rows = result.rows
    broken = [r for r in rows if r.label == "broken.onnx"]
    assert len(broken) == 1 and "cannot load" in broken[0].error and "broken.onnx" in broken[0].error
    for label in ("model.onnx", "fixed1.onnx"):
        assert "unknown execution provider 'nosuch'" in _row(rows, label, "nosuch").error
        assert "not available" in _row(rows, label, "CUDAExecutionProvider", 2).error
    assert all(_row(rows, "model.onnx", batch=b).ok for b in (1, 2))
    assert _row(rows, "fixed1.onnx", batch=1).ok
    bad_batch = _row(rows, "fixed1.onnx", batch=2)
    assert "fixed batch size of 1" in bad_batch.error and "batch 2" in bad_batch.error
    assert bad_batch.session_create_ms is not None  # the model loaded; only this batch is impossible


def test_time_budget_bounds_the_timed_runs(bench_models):
    by_time = run_benchmark([bench_models.fp32], time_budget=0.05, warmup=1, isolate=False).rows[0]
    assert by_time.runs >= 5 and sum(by_time.samples_ms) >= 40  # ran until ~50 ms were spent
    capped = run_benchmark([bench_models.fp32], time_budget=10.0, runs=7, warmup=0, isolate=False).rows[0]
    assert capped.runs == 7
    assert any("in-process" in w for w in capped.warnings)


def test_invalid_settings_are_refused(bench_models):
    for kwargs in ({"runs": 0}, {"time_budget": 0}, {"warmup": -1}, {"batches": [0]}, {"threads": [0]}):
        with pytest.raises(BenchError):
            run_benchmark([bench_models.fp32], isolate=False, **kwargs)


def test_silent_fallback_is_reported(bench_models):
    """A real silent fallback, through the whole sweep: onnxruntime's Azure EP (in the stock wheel) is listed by
    the session and runs no node, so every node is on the CPU; the row must say so (fallback flag + warning)."""
    import onnxruntime as ort

    if "AzureExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no Azure EP")
    row = run_benchmark([bench_models.fp32], providers=["AzureExecutionProvider"], runs=3, warmup=1).rows[0]
    assert row.ok and row.fallback and row.node_placement and not row.node_placement.get("AzureExecutionProvider")
    assert any("runs no node" in w for w in row.warnings)
    from edgecls.runtime.bench.report import engine_provider

    assert engine_provider(row) == "ort Azure -> Azure,CPU (fallback)"


def test_provider_listed_but_running_no_node_counts_as_fallback(bench_models):
    """onnxruntime's Azure EP (in the stock wheel) loads, is listed by get_providers(), and runs no node."""
    import onnxruntime as ort

    from edgecls.runtime.bench.onnxruntime_loader import load_onnxruntime

    if "AzureExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no Azure EP")
    runner = load_onnxruntime(str(bench_models.fp32), "AzureExecutionProvider", 1)
    assert "AzureExecutionProvider" in runner.providers_used  # the listing alone would hide the fallback
    assert runner.fallback and runner.node_placement and not runner.node_placement.get("AzureExecutionProvider")
    assert any("runs no node" in w for w in runner.warnings)


def test_end_to_end_stages_and_top1_accuracy(bench_models, tmp_path):
    from edgecls.runtime.images.decode import decode_image
    from edgecls.runtime.inference.preprocess import preprocess_batch
    from edgecls.runtime.providers.session import create_session

    data = tmp_path / "data"
    shutil.copytree(bench_models.images, data)
    (data / "dog").mkdir()
    shutil.copy(next((data / "square").glob("*.png")), data / "dog" / "x.png")  # a class the model lacks
    row = run_benchmark([bench_models.fp32], batches=[2], data_dir=data, **FAST).rows[0]
    assert row.ok, row.error
    e = row.e2e
    assert e.images == 10 and e.decode_errors == 1 and not e.synthetic
    assert min(e.decode_ms, e.preprocess_ms, e.infer_ms, e.postprocess_ms) > 0
    assert e.total_ms >= e.decode_ms + e.preprocess_ms + e.infer_ms and e.images_per_s > 0
    assert any("dog" in w for w in row.warnings) and any("could not be decoded" in w for w in row.warnings)
    # the accuracy is what the model really scores on the 9 labelled, decodable images
    labelled = sorted(p for p in data.rglob("*.png") if p.parent.name != "dog")
    sess, _ = create_session(bench_models.fp32, "cpu", threads=1)
    logits = sess.run(
        None, {"input": preprocess_batch([decode_image(p) for p in labelled], bench_models.contract)}
    )[0]
    truth = [bench_models.contract.labels.index(p.parent.name) for p in labelled]
    assert row.accuracy_images == 9
    assert row.accuracy == pytest.approx(float(np.mean(logits.argmax(1) == np.array(truth))))


def test_e2e_without_data_times_synthetic_jpegs(bench_models):
    row = run_benchmark([bench_models.fixed], e2e=True, runs=3, warmup=1, isolate=False).rows[0]
    assert row.ok and row.e2e.synthetic and row.e2e.images == 32  # fixed batch 1: one image per call
    assert row.accuracy is None


@pytest.mark.slow  # PyTorch and OpenCV baselines: 20 s at load 5-13
def test_baselines_share_the_table_and_ratios(bench_models):
    from edgecls.runtime.bench.baselines.torch_eager import torch_baselines

    targets = model_targets([bench_models.fp32, bench_models.int8])
    torch_rows, notes = torch_baselines(targets)
    assert notes == [] and len(torch_rows) == 1 and Path(torch_rows[0].model) == bench_models.checkpoint
    ocv = opencv_baselines(targets)
    assert [t.model for t in ocv] == [str(bench_models.fp32)]  # fp32 only: int8 QDQ is not offered
    result = run_benchmark(targets, baselines=ocv + torch_rows, **FAST)
    engines = {r.engine: r for r in result.rows}
    assert set(engines) == {ENGINE_ORT, ENGINE_OPENCV, ENGINE_TORCH}
    ref = _row(result.rows, "model.onnx")
    for engine in (ENGINE_OPENCV, ENGINE_TORCH):
        r = engines[engine]
        assert r.ok, r.error
        assert r.reference == "model.onnx" and r.speedup == pytest.approx(ref.p50_ms / r.p50_ms)
    assert "torch" in engines[ENGINE_TORCH].providers_used[0]
    assert engines[ENGINE_OPENCV].providers_used[0].startswith("OpenCV")


def test_torch_checkpoint_is_found_only_when_known(bench_models, tmp_path):
    from edgecls.runtime.bench.baselines.torch_eager import torch_baselines

    lone = tmp_path / "elsewhere" / "model.onnx"
    lone.parent.mkdir()
    shutil.copy(bench_models.fp32, lone)
    bench_models.checkpoint.rename(bench_models.checkpoint.with_suffix(".moved"))
    try:  # provenance path gone, no matching .pt beside the model: no baseline, a note says why
        baselines, notes = torch_baselines(model_targets([lone]))
    finally:
        bench_models.checkpoint.with_suffix(".moved").rename(bench_models.checkpoint)
    assert baselines == [] and "checkpoint not found" in notes[0]
    baselines, _ = torch_baselines(model_targets([lone]), checkpoint=bench_models.checkpoint)
    assert len(baselines) == 1 and baselines[0].family == family_of(lone)


def test_ratios_use_the_fp32_cpu_row_of_the_same_family_batch_and_threads():
    def row(
        label,
        family,
        variant="fp32",
        batch=1,
        threads=1,
        p50=10.0,
        engine=ENGINE_ORT,
        provider=CPU_PROVIDER,
        error=None,
        acc=None,
    ):
        return BenchRow(
            label=label,
            model=label,
            engine=engine,
            variant=variant,
            family=family,
            provider=provider,
            batch=batch,
            threads=threads,
            p50_ms=p50,
            error=error,
            accuracy=acc,
        )

    rows = [
        row("a.fp32.b1", "A", p50=10.0, acc=0.9),
        row("a.fp32.b8", "A", batch=8, p50=40.0),
        row("a.int8.b1", "A", "int8", p50=5.0, acc=0.88),
        row("a.int8.b8", "A", "int8", batch=8, p50=10.0),
        row("a.int8.t2", "A", "int8", threads=2, p50=3.0),  # no fp32 row with 2 threads
        row("b.fp32.b1", "B", p50=100.0),
        row("b.int8.b1", "B", "int8", p50=50.0),
        row("a.fp32.cuda", "A", provider="CUDAExecutionProvider", p50=1.0),  # not a reference
        row("torch", "A", engine=ENGINE_TORCH, p50=30.0),
        row("c.fp32.err", "C", error="boom"),
        row("c.int8", "C", "int8", p50=1.0),
    ]
    compute_ratios(rows)
    got = {r.label: (r.speedup, r.reference) for r in rows}
    assert got["a.int8.b1"] == (2.0, "a.fp32.b1") and got["a.int8.b8"] == (4.0, "a.fp32.b8")
    assert got["b.int8.b1"] == (2.0, "b.fp32.b1") and got["a.fp32.cuda"] == (10.0, "a.fp32.b1")
    assert got["torch"][0] == pytest.approx(1 / 3)
    assert got["a.int8.t2"] == (None, None) and got["c.int8"] == (None, None)  # errored reference is not used
    assert rows[2].accuracy_delta == pytest.approx(-2.0)


def test_variant_and_family_from_file_names(tmp_path):
    assert variant_of(Path("m.int8.onnx"), None) == "int8"
    assert variant_of(Path("m_fp16.onnx"), None) == "fp16"
    assert variant_of(Path("model.onnx"), None) == "fp32"
    assert family_of(tmp_path / "model.int8.onnx") == family_of(tmp_path / "model.onnx")
    assert family_of(tmp_path / "model.onnx") != family_of(tmp_path / "x" / "model.onnx")


def test_runtime_side_never_imports_torch(bench_models):
    code = textwrap.dedent(f"""
        import sys
        from edgecls.runtime.bench.sweep import run_benchmark
        from edgecls.runtime.bench import env, report
        from edgecls.runtime.bench.baselines import opencv_dnn, torch_eager
        env.collect_environment()
        r = run_benchmark([{str(bench_models.fp32)!r}], runs=2, warmup=1, threads=[1], isolate=False)
        assert r.rows[0].ok, r.rows[0].error
        assert "torch" not in sys.modules, "torch was imported"
        assert r.environment.versions["torch"]  # read from package metadata, not by importing it
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_scan_images_labels_by_class_folder_and_prefers_the_test_split(tmp_path):
    from edgecls.runtime.bench.images import scan_images

    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            (tmp_path / split / cls / "x.png").write_bytes(b"")
    (tmp_path / "test" / "loose.jpg").write_bytes(b"")
    items = scan_images(tmp_path)
    assert [(Path(p).relative_to(tmp_path).as_posix(), c) for p, c in items] == [
        ("test/loose.jpg", None),
        ("test/a/x.png", "a"),
        ("test/b/x.png", "b"),
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="no images"):
        scan_images(tmp_path / "empty")
