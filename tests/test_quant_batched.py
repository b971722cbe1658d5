"""The int8 search's measurements run their images through runtime/inference/batched_inference like every other caller:
a model exported with a fixed batch dimension is measured (not refused by onnxruntime) and measures the same
as the same network with a dynamic batch. The search as a whole (calibration in batches of 8, single-image
timing) still needs a dynamic batch: ``edgecls quantize`` says so in one line before doing anything."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from fixtures_runtime import golden_images, run_edgecls

from edgecls.export.parity import onnx_logits
from edgecls.export.quant.search.sensitivity import rank_nodes
from edgecls.export.quant.search.trial_eval import measure_trial
from edgecls.runtime.inference.preprocess import preprocess_batch


def _inputs(contract, n: int = 5) -> np.ndarray:
    """float32[n, 3, 32, 32]; an odd n leaves a fixed batch of 2 a short last call."""
    return preprocess_batch(list(golden_images(n)), contract)


def _qdq(fp32: Path, out: Path, inputs: np.ndarray, batch: int) -> Path:
    """onnxruntime's static QDQ int8 copy of ``fp32``, calibrated on ``inputs`` in calls of ``batch``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    name = onnx.load(str(fp32)).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.parts = iter([{name: inputs[i : i + batch]} for i in range(0, len(inputs) - batch + 1, batch)])

        def get_next(self):  # noqa: ANN201 (onnxruntime's interface)
            return next(self.parts, None)

    quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ)
    return out


@pytest.fixture(scope="module")
def twins(runtime_models, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """kind -> (fp32, int8 QDQ) for the fixture network exported with a fixed batch of 2 and a dynamic one, both
    calibrated on the same 4 images (so the two int8 copies compute the same)."""
    d = tmp_path_factory.mktemp("twins")
    x = _inputs(runtime_models.contract)
    return {
        kind: (fp32, _qdq(fp32, d / f"{kind}.qdq.onnx", x, batch))
        for kind, fp32, batch in (("fixed", runtime_models.fixed2, 2), ("dynamic", runtime_models.cnn, 4))
    }


def test_a_fixed_batch_model_is_measured_like_its_dynamic_twin(runtime_models, twins):
    x = _inputs(runtime_models.contract)
    reference = onnx_logits(runtime_models.cnn, x)
    labels = np.roll(reference.argmax(1), 1)  # some right, some wrong
    got = {kind: measure_trial(qdq, x, (labels, reference), latency=(3, 1)) for kind, (_, qdq) in twins.items()}
    fixed, dynamic = got["fixed"], got["dynamic"]
    assert fixed.accuracy.top1 == dynamic.accuracy.top1
    assert fixed.accuracy.agreement == dynamic.accuracy.agreement
    assert dynamic.accuracy.relative_error > 0  # int8 against fp32: a real difference, measured alike
    assert fixed.accuracy.relative_error == pytest.approx(dynamic.accuracy.relative_error, rel=1e-5)
    assert fixed.latency_p50_ms > 0 and fixed.fusion["int8_convs"] > 0


def test_sensitivity_ranks_the_nodes_of_a_fixed_batch_model_as_of_its_dynamic_twin(runtime_models, twins):
    x = _inputs(runtime_models.contract)
    reference = onnx_logits(runtime_models.cnn, x)
    convs = [n.name for n in onnx.load(str(runtime_models.cnn)).graph.node if n.op_type == "Conv"]
    ranked = {kind: rank_nodes(qdq, fp32, convs, x, reference) for kind, (fp32, qdq) in twins.items()}
    assert len(ranked["dynamic"]) == len(convs) >= 2  # every conv was put back in float and scored
    assert [n for n, _ in ranked["fixed"]] == [n for n, _ in ranked["dynamic"]]
    np.testing.assert_allclose([e for _, e in ranked["fixed"]], [e for _, e in ranked["dynamic"]], rtol=1e-5)


@pytest.mark.slow  # quantize subprocesses: 12 s at load 5-13
def test_quantize_refuses_a_fixed_batch_model_in_one_line_before_writing(runtime_models, tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    for i, image in enumerate(golden_images(12)):
        cv2.imwrite(str(calib / f"{i}.png"), image)
    out = tmp_path / "out"
    proc = run_edgecls("quantize", str(runtime_models.fixed2), "--calib", str(calib), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {runtime_models.fixed2}: input 'input' has a fixed batch size of 2; int8 quantization needs a "
        "dynamic batch dimension: export the model again with one (torch.onnx.export(..., "
        "dynamic_axes={'input': {0: 'batch'}}))"
    ]
    assert not out.exists() or not any(out.iterdir())
