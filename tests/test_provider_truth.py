"""Providers that tell the truth, each claim checked for real on this CPU-only machine (no mocked sessions):
the options edgecls passes are the documented ones, --strict raises on a provider that loads but runs no node,
bench measures what `edgecls run` runs, and `--provider all` marks the fastest correct provider (the flags the docs
show are checked for every command by tests/test_docs.py)."""

from __future__ import annotations

import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.runtime.bench.sweep import run_benchmark
from edgecls.runtime.errors import ProviderError
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.providers import names
from edgecls.runtime.providers import session as S

# Option names as onnxruntime documents them (the provider pages under
# https://onnxruntime.ai/docs/execution-providers/ and each provider's *_execution_provider_info.cc parser,
# e.g. onnxruntime/core/providers/tensorrt/tensorrt_execution_provider_info.cc). Copied, not generated: a name
# edgecls passes that is not here is a typo onnxruntime would reject or silently ignore on the device.
DOCUMENTED: dict[str, set[str]] = {
    "CUDAExecutionProvider": {
        "device_id", "gpu_mem_limit", "arena_extend_strategy", "cudnn_conv_algo_search",
        "cudnn_conv_use_max_workspace", "cudnn_conv1d_pad_to_nc1d", "do_copy_in_default_stream",
        "enable_cuda_graph", "prefer_nhwc", "use_tf32", "tunable_op_enable", "tunable_op_tuning_enable",
    },
    "TensorrtExecutionProvider": {
        "device_id", "trt_max_partition_iterations", "trt_min_subgraph_size", "trt_max_workspace_size",
        "trt_fp16_enable", "trt_int8_enable", "trt_int8_calibration_table_name",
        "trt_int8_use_native_calibration_table", "trt_dla_enable", "trt_dla_core", "trt_dump_subgraphs",
        "trt_engine_cache_enable", "trt_engine_cache_path", "trt_engine_decryption_enable",
        "trt_engine_decryption_lib_path", "trt_force_sequential_engine_build", "trt_context_memory_sharing_enable",
        "trt_layer_norm_fp32_fallback", "trt_timing_cache_enable", "trt_force_timing_cache_match",
    },
    "OpenVINOExecutionProvider": {
        "device_type", "precision", "num_of_threads", "num_streams", "cache_dir", "context",
        "enable_opencl_throttling", "enable_qdq_optimizer", "disable_dynamic_shapes", "load_config",
        "model_priority",
    },
    "ROCMExecutionProvider": {"device_id", "gpu_mem_limit", "arena_extend_strategy", "miopen_conv_exhaustive_search"},
    "MIGraphXExecutionProvider": {"device_id", "migraphx_fp16_enable", "migraphx_int8_enable"},
    "DmlExecutionProvider": {"device_id", "performance_preference", "device_filter"},
}
CUDNN_ALGO_SEARCH = {"EXHAUSTIVE", "HEURISTIC", "DEFAULT"}


@pytest.mark.parametrize("provider", sorted(DOCUMENTED))
def test_provider_options_are_documented_names(provider):
    opts = names.default_provider_options(provider, device_id=0, threads=2)
    assert set(opts) <= DOCUMENTED[provider], set(opts) - DOCUMENTED[provider]
    if provider == "CUDAExecutionProvider":
        assert opts["cudnn_conv_algo_search"] in CUDNN_ALGO_SEARCH
    if provider == "OpenVINOExecutionProvider":  # --threads reaches the EP's own pool
        assert opts["num_of_threads"] == 2 and opts["device_type"] == "CPU"


def test_openvino_runtime_properties_are_ones_openvino_supports():
    ov = pytest.importorskip("openvino")
    _, props = __import__("edgecls.runtime.providers.openvino", fromlist=["x"]).compile_properties(2, {})
    # CACHE_DIR is a Core-level property (model cache), named by openvino's own properties module.
    supported = set(ov.Core().get_property("CPU", "SUPPORTED_PROPERTIES")) | {ov.properties.cache_dir()}
    assert set(props) <= supported, set(props) - supported


def _azure_or_skip() -> str:
    if "AzureExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no Azure EP (a provider that loads but runs no node)")
    return "AzureExecutionProvider"


def test_strict_raises_when_a_provider_loads_but_runs_no_node(runtime_models):
    azure = _azure_or_skip()
    with pytest.warns(RuntimeWarning, match="runs no node"):
        sess, info = S.create_session(runtime_models.cnn, provider=azure)
    assert azure in sess.get_providers()  # the listing alone says "Azure"...
    assert info.fallback and info.node_placement is not None and not info.node_placement.get(azure)
    with pytest.raises(ProviderError, match="strict"):
        S.create_session(runtime_models.cnn, provider=azure, strict=True)
    with pytest.raises(ProviderError):
        Classifier(runtime_models.cnn, provider=azure, strict=True)


def test_run_and_bench_strict_on_a_provider_that_runs_nothing(runtime_models, runtime_images):
    azure = _azure_or_skip()
    r = CliRunner().invoke(app, ["run", str(runtime_models.cnn), str(runtime_images.good[0]), "--provider", azure,
                                 "--strict", "--json"])
    assert isinstance(r.exception, ProviderError) and "strict" in str(r.exception)  # exit 2 from `edgecls`
    result = run_benchmark([runtime_models.cnn], providers=[azure], threads=[1], runs=2, warmup=0,
                           isolate=False, strict=True, compare=False)
    assert result.rows[0].error and "strict" in result.rows[0].error
    loose = run_benchmark([runtime_models.cnn], providers=[azure], threads=[1], runs=2, warmup=0,
                          isolate=False, compare=False)
    assert loose.rows[0].ok and loose.rows[0].fallback


def test_bench_measures_what_run_runs(runtime_models):
    """`edgecls run` turns thread spinning off; bench rows do too unless asked, and then say so."""
    sess, _ = S.create_session(runtime_models.cnn, provider="cpu", threads=1, spin=False)
    assert sess.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    result = run_benchmark([runtime_models.cnn], threads=[1], runs=2, warmup=0, isolate=False, compare=False,
                           spins=[False, True])
    assert [r.spin for r in result.rows] == [False, True]
    assert result.rows[1].reference == result.rows[0].label and result.rows[1].speedup is not None
    from edgecls.runtime.bench.report import threads_text

    assert [threads_text(r) for r in result.rows] == ["1", "1 spin"]
    default = run_benchmark([runtime_models.cnn], threads=[1], runs=2, warmup=0, isolate=False, compare=False)
    assert [r.spin for r in default.rows] == [False]


def test_provider_all_marks_the_fastest_correct_row(bench_models):
    result = run_benchmark([bench_models.fp32], providers=["all"], threads=[1], runs=5, warmup=1, isolate=False,
                           data_dir=bench_models.images)  # correctness is judged on real images only
    picked = [r for r in result.rows if r.auto_pick]
    assert len(picked) == 1 and result.settings["auto_picks"][0]["provider"] == picked[0].provider
    correct = [r for r in result.rows if r.ok and not r.fallback and r.agreement == 1.0]
    assert picked[0] in correct and picked[0].p50_ms == min(r.p50_ms for r in correct)
    measured = {r.provider for r in result.rows}
    assert "CPUExecutionProvider" in measured
    if S.openvino_route() == "openvino":
        assert "OpenVINOExecutionProvider" in measured
