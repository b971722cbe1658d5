"""``--provider openvino`` for real on this CPU: OpenVINO runs the exported fp32 and int8 QDQ files behind the
Classifier interface, agrees with onnxruntime CPU, reads the contract from the file, maps --threads to its own
hints, and is reported as what it is (``edgecls providers``, bench rows). Nothing is mocked."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from fixtures_runtime import REPO, golden_images, run_edgecls
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.providers.session import openvino_route

pytest.importorskip("openvino", reason="the openvino extra is not installed: pip install 'edgecls[openvino]'")


def _inputs(clf: Classifier, n: int = 12) -> np.ndarray:
    return clf.preprocess(list(golden_images(n, seed=5)))


def test_fp32_and_int8_agree_with_onnxruntime_cpu(bench_models):
    for model, atol in ((bench_models.fp32, 1e-4), (bench_models.int8, None)):
        ort_cpu = Classifier(model, provider="cpu", threads=1)
        ov = Classifier(model, provider="openvino", threads=1)
        x = _inputs(ort_cpu)
        ref, got = ort_cpu.logits_batch(x), ov.logits_batch(x)
        assert got.shape == ref.shape == (12, len(ov.labels))
        if atol is not None:
            np.testing.assert_allclose(got, ref, atol=atol)
        else:  # int8 kernels round differently between engines: the same classes, small output differences
            assert np.abs(got - ref).max() < 0.1 * np.abs(ref).max()
        assert (got.argmax(1) == ref.argmax(1)).mean() >= 11 / 12
        # The contract came out of the file through OpenVINO's reader, not from onnxruntime.
        assert ov.contract == ort_cpu.contract and ov.contract.provenance.get("checkpoint_sha256")
        assert ov.providers == ["OpenVINO:CPU"] and ov.info.engine.startswith("openvino 20")
        assert not ov.info.fallback and ov.session.__class__.__name__ == "OpenVINOSession"
    # Batches of different sizes reuse the one compiled (dynamic-batch) model.
    assert ov.logits_batch(x[:1]).shape == (1, len(ov.labels))


def test_threads_become_openvino_hints_and_compiles_are_cached(bench_models, tmp_path):
    one = Classifier(bench_models.fp32, provider="openvino", threads=1, provider_options={"CACHE_DIR": str(tmp_path)})
    assert any(tmp_path.iterdir())  # OpenVINO's model cache: the next cold start imports instead of compiling
    assert one.session.compiled_property("INFERENCE_NUM_THREADS") == 1
    assert str(one.session.compiled_property("PERFORMANCE_HINT")) == "LATENCY"
    tput = Classifier(
        bench_models.fp32, provider="openvino", threads=2, provider_options={"PERFORMANCE_HINT": "THROUGHPUT"}
    )
    assert tput.session.compiled_property("INFERENCE_NUM_THREADS") == 2
    assert str(tput.session.compiled_property("PERFORMANCE_HINT")) == "THROUGHPUT"


def test_route_is_openvino_runtime_where_onnxruntime_has_no_openvino_ep():
    import onnxruntime as ort

    if "OpenVINOExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime build runs OpenVINO itself")
    assert openvino_route() == "openvino"
    rows = {json.loads(line)["provider"]: json.loads(line) for line in
            CliRunner().invoke(app, ["providers", "--json"]).stdout.splitlines() if line.strip()}
    ov = rows["OpenVINOExecutionProvider"]
    assert ov["available"] and ov["source"].startswith("openvino ") and "directly" in ov["source"]
    assert any(d.startswith("CPU ") for d in ov["devices"])
    assert ov["auto_rank"] is None  # run's `auto` never takes this path without being asked


def test_run_command_with_openvino_stays_torch_free(bench_models):
    img = bench_models.images / "circle" / "img_0.png"
    ov = run_edgecls("run", str(bench_models.fp32), str(img), "--provider", "openvino", "--threads", "1", "--json")
    assert ov.returncode == 0, ov.stderr
    top_cpu, top_ov = Classifier(bench_models.fp32, provider="cpu").predict(img)[0], json.loads(ov.stdout)["top_k"][0]
    assert top_ov["label"] == top_cpu.label and abs(top_ov["score"] - top_cpu.score) < 1e-4
    # openvino is imported only when asked for, and never brings torch/onnx with it.
    code = (
        "import sys; from edgecls.runtime.inference.classifier import Classifier; "
        "assert 'openvino' not in sys.modules; "
        f"Classifier({str(bench_models.fp32)!r}, provider='openvino'); "
        "assert 'openvino' in sys.modules and 'torch' not in sys.modules and 'onnx' not in sys.modules"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr


def test_eval_of_onnx_with_openvino(bench_models):
    r = CliRunner().invoke(
        app, ["eval", str(bench_models.int8), str(bench_models.images), "--provider", "openvino", "--json"]
    )
    assert r.exit_code == 0, r.output
    ref = CliRunner().invoke(
        app, ["eval", str(bench_models.int8), str(bench_models.images), "--provider", "cpu", "--json"]
    )
    doc, ref_doc = json.loads(r.stdout.strip().splitlines()[-1]), json.loads(ref.stdout.strip().splitlines()[-1])
    assert doc["top1"] == pytest.approx(ref_doc["top1"], abs=0.12)  # 9 images: one may flip on int8 rounding


def test_bench_cpu_and_openvino_in_one_table(bench_models, tmp_path):
    out = tmp_path / "b.json"
    r = CliRunner().invoke(app, [
        "bench", str(bench_models.fp32), str(bench_models.int8), "--provider", "cpu,openvino", "--threads", "1",
        "--runs", "3", "--warmup", "1", "--no-baselines", "--in-process", "--json-file", str(out),
        "--data", str(bench_models.images), "--precision", "f32",
    ])
    assert r.exit_code == 0, r.output + repr(r.exception)
    rows = json.loads(out.read_text())["rows"]
    assert [(row["label"], row["provider"]) for row in rows] == [
        (m, p) for m in ("model.onnx", "model.int8.onnx") for p in ("CPUExecutionProvider", "OpenVINOExecutionProvider")
    ]
    ov_rows = [row for row in rows if row["provider"] == "OpenVINOExecutionProvider"]
    assert all(row["providers_used"] == ["OpenVINO:CPU"] and row["error"] is None for row in ov_rows)
    assert all(row["precision"] == "f32" for row in ov_rows)
    assert ov_rows[0]["agreement"] == 1.0 and ov_rows[0]["max_abs_diff"] < 1e-4  # fp32 vs ORT CPU fp32
    assert ov_rows[0]["agreement_images"] == 9  # every decodable image of --data (one is corrupt)
    assert all(row["speedup"] is not None for row in rows)  # every row compared with ORT CPU fp32
    assert "openvino" in r.output and "(runtime)" in r.output and "agree" in r.output  # table cells may fold


def test_info_says_how_openvino_runs_here(bench_models):
    r = CliRunner().invoke(app, ["info", str(bench_models.fp32), "--json"])
    assert r.exit_code == 0, r.output
    paths = json.loads(r.stdout)["providers_here"]
    assert any(p.startswith("cpu: onnxruntime") for p in paths)
    assert any(p.startswith("openvino: ") for p in paths)


def test_openvino_path_imports_neither_onnxruntime_nor_openvinos_converter(bench_models):
    """Cold start (issue #22): OpenVINO's own runtime needs neither onnxruntime (imported only to ask whether it
    has an OpenVINO EP) nor ``openvino.tools.ovc`` (the model converter with its telemetry, ~70% of
    ``import openvino``); the converter still imports afterwards for whoever wants it."""
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("onnxruntime-openvino")
        pytest.skip("this onnxruntime build includes the OpenVINO EP: onnxruntime decides the route")
    except PackageNotFoundError:
        pass
    if importlib.util.find_spec("onnxruntime_ep_openvino") is not None:
        pytest.skip("the OpenVINO plugin EP is installed: onnxruntime decides the route")
    code = (
        "import sys; from edgecls.runtime.inference.classifier import Classifier; "
        f"c = Classifier({str(bench_models.fp32)!r}, provider='openvino'); assert c.info.precision == 'f32'; "
        "assert 'onnxruntime' not in sys.modules, 'onnxruntime imported'; "
        "assert 'openvino.tools.ovc' not in sys.modules, 'converter imported'; "
        "from openvino.tools.ovc import convert_model"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
