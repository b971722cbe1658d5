"""int8's budget search and its ingredients on small real models: which nodes stay float, bias correction,
the frontier. The recipes per target and the runtime's saturation warnings, which need no model, are
tests/test_quant_recipes.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fixtures_export import FAST_QUANT
from fixtures_quant import colour_images
from torch import nn

from edgecls.export.metadata import read_contract_file
from edgecls.export.onnx_export import export_to_onnx
from edgecls.export.quant.grading.image_sets import ImageList
from edgecls.export.quant.options import QuantizeOptions
from edgecls.export.quant.pipeline import quantize_model
from edgecls.runtime.contract.model_contract import ModelContract


def _quantize(src, out, max_drop, log=lambda _m: None):
    calib = ImageList("colours", colour_images(64, 0), None, [])
    val = ImageList("colours", colour_images(96, 1), None, [])
    return quantize_model(src, out, calib, val, None, QuantizeOptions(max_drop=max_drop, **FAST_QUANT), log)


@pytest.mark.slow  # int8 search: 13 s at load 5-13
def test_the_float_node_search_keeps_the_responsible_nodes_in_float(outlier_model, tmp_path):
    messages: list[str] = []
    report = _quantize(outlier_model, tmp_path / "q" / "model.int8.onnx", 5.0, messages.append)
    saved = json.loads((tmp_path / "q" / "quantization_report.json").read_text())
    trials = saved["trials"]
    assert trials[0]["drop_points"] > 5, "plain int8 should break this model"
    assert report.budget_met and report.metric == "agreement"
    assert set(report.nodes_kept_float) == {"/conv1/Conv", "/conv2/Conv"}
    assert saved["sensitivity_top"][0]["node"] == "/conv2/Conv"  # its float unit is (conv2, conv1)
    assert report.grade.int8.agreement >= 0.95
    contract = read_contract_file(tmp_path / "q" / "model.int8.onnx")
    assert contract.provenance["quantization"]["nodes_kept_float"] == list(report.nodes_kept_float)
    assert contract.provenance["quantization"]["budget_met"] is True
    assert saved["nodes_kept_float"] == list(report.nodes_kept_float)
    assert "within budget" in (tmp_path / "q" / "quantization_report.md").read_text()
    assert any("sensitivity" in m for m in messages)
    # every repair was measured, each kept or not by what it measured (no QAT: not an edgecls run)
    assert [n.split(" ")[0] for n in report.repairs[:3]] == ["bias", "cross-layer", "per-tensor"]
    # post-training missed the budget, so layer-wise reconstruction ran (auto); the nodes kept float were searched
    # from the recipe without it, ranked by their sensitivity in that graph
    assert report.repairs[3].startswith("layer-wise reconstruction")
    assert any(t["reconstruct"] for t in trials)
    assert not any(t["reconstruct"] and t["nodes_kept_float"] for t in trials)
    assert any("equalized" in t["recipe"] for t in trials)
    assert any("PerTensor" in t["recipe"] for t in trials)
    # no trial twice; graded on held-out images the search did not see, both scores reported
    keys = [(t["recipe"], t["bias_correction"]) for t in trials]
    assert len(keys) == len(set(keys))
    assert report.validation.search + report.validation.holdout == 96
    assert saved["search"]["images"] == 48 and "drop_points" in saved["search"]
    # the chosen graph runs mostly in int8 after onnxruntime's fusions, and the frontier is reported
    assert report.fusion["int8_convs"] >= report.fusion["float_convs"]
    assert saved["frontier"] and (tmp_path / "q" / "quantization_frontier.png").is_file()
    assert contract.provenance["quantization"]["target"] == report.plan.target



def test_a_recipe_already_bias_corrected_is_not_tried_again(outlier_model, tmp_path):
    """A recipe that is already bias-corrected: the repair step must not run it again."""
    import dataclasses

    from edgecls.export.quant.recipes import QuantRecipe

    calib = ImageList("colours", colour_images(64, 0), None, [])
    val = ImageList("colours", colour_images(96, 1), None, [])
    corrected = QuantRecipe("start", bias_correction=True)
    options = dataclasses.replace(QuantizeOptions(max_drop=100.0, **FAST_QUANT), recipes=(corrected,))
    report = quantize_model(outlier_model, tmp_path / "m.int8.onnx", calib, val, None, options, lambda _m: None)
    assert not any(t.recipe.name.endswith("-bc") for t in report.trials), [t.label for t in report.trials]
    assert report.repairs[0].startswith("bias correction: already in the recipe")

class _Depthwise(nn.Module):
    """A depthwise 3x3 conv whose weights round the same way in every channel (eight at 0.0104 next to one at
    1.0: 8-bit per-channel steps of 1/127 round each down by 0.0025), on bright inputs: the rounding shifts every
    channel's mean output, which bias correction must undo."""

    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(3, 3, 3, padding=1, groups=3)
        self.head = nn.Linear(3, 2)
        with torch.no_grad():
            self.dw.weight.fill_(0.0104)
            self.dw.weight[:, :, 1, 1] = 1.0
            self.dw.bias.fill_(0.1)  # a bias to correct (convs without one are left as they are)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dw(x).mean((2, 3)))


def _conv_output(path, x: np.ndarray) -> np.ndarray:
    """float32[N, C, H, W]: the first Conv's output of the ONNX model at ``path`` on inputs ``x``."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(path))
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    m.graph.output.append(onnx.helper.make_tensor_value_info(conv.output[0], onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run([conv.output[0]], {sess.get_inputs()[0].name: x})[0]


def test_bias_correction_cancels_the_mean_error_of_rounded_weights(tmp_path):
    from edgecls.export.quant.qdq.static_quantizer import StaticQuantizer
    from edgecls.export.quant.recipes import QuantRecipe

    contract = ModelContract(
        labels=("a", "b"), input_size=(32, 32), resize_mode="stretch", mean=(0, 0, 0), std=(1, 1, 1)
    )
    export_to_onnx(_Depthwise().eval(), contract, tmp_path / "dw.onnx", exporter="torchscript")
    calib = ImageList("colours", colour_images(16, 0), None, [])
    quantizer = StaticQuantizer(tmp_path / "dw.onnx", calib, contract, tmp_path)
    x = calib.inputs(contract)
    ref = _conv_output(tmp_path / "dw.onnx", x)
    errors = {}
    for bc in (False, True):
        path = quantizer.quantize(QuantRecipe("u8s8", bias_correction=bc), tmp_path / f"bc{bc}.onnx")
        errors[bc] = float(np.abs((_conv_output(path, x) - ref).mean(axis=(0, 2, 3))).mean())
    assert quantizer.bias_notes and errors[True] < 0.25 * errors[False]


def test_frontier_keeps_only_undominated_trials():
    from edgecls.export.quant.search.frontier import frontier

    trials = [
        {"recipe": "a", "drop_points": 0.0, "latency_p50_ms": 5.0},
        {"recipe": "b", "drop_points": 2.0, "latency_p50_ms": 3.0},
        {"recipe": "c", "drop_points": 2.5, "latency_p50_ms": 4.0},  # slower and worse than b
        {"recipe": "d", "drop_points": 9.0, "latency_p50_ms": 2.0},
    ]
    assert [t["recipe"] for t in frontier(trials)] == ["d", "b", "a"]
