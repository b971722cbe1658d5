"""OpenVINO's precision is explicit (issue #22): f32 unless asked, bf16/f16 only where OpenVINO's own device
properties list them, read back from the compiled model and shown by run, info, serve and bench; engine load
errors keep their cause.

By construction for any CPU: a bf16-capable CPU is recognised from OpenVINO's OPTIMIZATION_CAPABILITIES (on an
Intel Xeon with AMX it lists BF16; on AVX2 EPYCs it does not), and each test asserts the branch the CPU it runs on
takes. Nothing is mocked: real ONNX files, OpenVINO compiles, CLI processes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures_runtime import golden_images, run_edgecls

from edgecls.runtime.errors import ProviderError

ov = pytest.importorskip("openvino", reason="the openvino extra is not installed: pip install 'edgecls[openvino]'")

from edgecls.runtime.inference.classifier import Classifier  # noqa: E402
from edgecls.runtime.providers.openvino import check_precision, cpu_precisions, device_capabilities  # noqa: E402

NO_CACHE = {"CACHE_DIR": ""}  # every compile here is a real compile, not a cache import


def _cpu_has_bf16() -> bool:
    return "BF16" in device_capabilities(ov.Core(), "CPU")


def test_fp32_file_runs_in_f32_by_default_read_back_from_the_compiled_model(bench_models):
    clf = Classifier(bench_models.fp32, provider="openvino", threads=1, provider_options=NO_CACHE)
    # Without the hint, OpenVINO's CPU plugin compiles an fp32 graph in bf16 wherever the CPU has bf16.
    assert clf.session.compiled_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    assert clf.info.precision == "f32" and "precision f32" in clf.info.engine_line()
    ref = Classifier(bench_models.fp32, provider="cpu", threads=1)
    x = ref.preprocess(list(golden_images(8, seed=3)))
    np.testing.assert_allclose(clf.logits_batch(x), ref.logits_batch(x), atol=1e-4)


def test_bf16_when_asked_on_a_cpu_with_bf16_else_a_clear_refusal(bench_models):
    if _cpu_has_bf16():
        clf = Classifier(bench_models.fp32, provider="openvino", threads=1, precision="bf16", provider_options=NO_CACHE)
        assert clf.info.precision == "bf16" == clf.session.compiled_property("INFERENCE_PRECISION_HINT").get_type_name()
        assert "bf16" in cpu_precisions()
        f32 = Classifier(bench_models.fp32, provider="openvino", threads=1, provider_options=NO_CACHE)
        ort = Classifier(bench_models.fp32, provider="cpu", threads=1)
        x = f32.preprocess(list(golden_images(8, seed=3)))
        f32_error = np.abs(f32.logits_batch(x) - ort.logits_batch(x)).max()
        bf16_error = np.abs(clf.logits_batch(x) - ort.logits_batch(x)).max()
        assert bf16_error > 10 * f32_error and bf16_error > 1e-5  # bf16 really computed (8-bit mantissa)
    else:
        with pytest.raises(ProviderError, match="no BF16 support"):
            Classifier(bench_models.fp32, provider="openvino", threads=1, precision="bf16")
        assert "bf16" not in cpu_precisions()


def test_precision_check_reads_openvino_capabilities():
    avx2_epyc = ["FP32", "INT8", "BIN", "EXPORT_IMPORT"]  # what OpenVINO 2026.4 lists on an AMD EPYC (AVX2)
    amx_xeon = ["BF16", "WINOGRAD", "FP32", "FP16", "INT8", "BIN", "EXPORT_IMPORT"]  # Intel Xeon with AMX
    check_precision("bf16", amx_xeon)
    check_precision("f32", avx2_epyc)
    with pytest.raises(ProviderError, match=r"--precision bf16: .*no BF16 support.*use --precision f32"):
        check_precision("bf16", avx2_epyc)
    with pytest.raises(ProviderError, match="no FP16 support"):
        check_precision("f16", avx2_epyc)


def test_onnxruntime_refuses_a_precision_it_cannot_honour(bench_models):
    with pytest.raises(ProviderError, match="OpenVINO setting"):
        Classifier(bench_models.fp32, provider="cpu", precision="bf16")
    assert Classifier(bench_models.fp32, provider="cpu", precision="f32").info.precision is None
    img = bench_models.images / "circle" / "img_0.png"
    r = run_edgecls("run", str(bench_models.fp32), str(img), "--provider", "cpu", "--precision", "bf16")
    assert r.returncode == 2 and r.stderr.startswith("error: --precision bf16 is an OpenVINO setting")
    assert "Traceback" not in r.stderr


def test_run_banner_and_info_show_the_compiled_precision(bench_models):
    img = bench_models.images / "circle" / "img_0.png"
    r = run_edgecls("run", str(bench_models.fp32), str(img), "--provider", "openvino", "--threads", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert "engine: openvino 20" in r.stderr and "precision f32" in r.stderr
    info = run_edgecls("info", str(bench_models.fp32), "--provider", "openvino", "--json")
    assert info.returncode == 0, info.stderr
    engine = json.loads(info.stdout)["engine"]
    assert engine["precision"] == "f32" and engine["used"] == ["OpenVINO:CPU"]


def test_serve_reports_the_precision(bench_models, serve_process):
    server = serve_process(str(bench_models.fp32), "--provider", "openvino", "--threads", "1")
    with server.client() as c:
        model = c.get("/v1/model").json()
    assert model["precision"] == "f32" and model["engine"].startswith("openvino ")
    assert model["providers"]["used"] == ["OpenVINO:CPU"]


def test_a_load_error_keeps_the_engines_cause(tmp_path, bench_models):
    """A graph OpenVINO cannot convert: its message is 'Exception from ...core.cpp:84:' then a Check line, and
    the cause on later lines; the first line alone said nothing."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("NoSuchOp", ["flat"], ["logits"], domain="com.example"),
    ]
    graph = helper.make_graph(
        nodes, "custom", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
    )
    model = tmp_path / "custom.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.example", 1)]), model)
    img = bench_models.images / "circle" / "img_0.png"
    r = run_edgecls("run", str(model), str(img), "--provider", "openvino", "--labels", "a,b,c", "--input-size", "8")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "OpenVINO cannot load model" in r.stderr and "com.example.NoSuchOp" in r.stderr
    assert "Exception from" not in r.stderr
    verbose = run_edgecls("run", str(model), str(img), "--provider", "openvino", "--labels", "a,b,c",
                          "--input-size", "8", "--verbose")
    assert verbose.returncode == 2 and "Exception from src/" in verbose.stderr  # the full text, when asked
