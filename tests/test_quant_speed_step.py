"""Issue 32, speed-aware int8: the search profiles its pick per node on this CPU, tries in float what runs slower
in int8 (and what the kernels may favour), and keeps only what the interleaved timing finds faster within budget;
issue 31 item 5: the conv counts say which float convs are the file's and which are this CPU's onnxruntime's."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from fixtures_quant import CONTRACT_224

from edgecls.export.parity import onnx_logits
from edgecls.export.quant.grading.conv_counts import fusion_record
from edgecls.export.quant.grading.image_sets import ImageList
from edgecls.export.quant.qdq.static_quantizer import StaticQuantizer
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.export.quant.search.node_profile import compare, kind_totals, profile_nodes
from edgecls.export.quant.search.speed_step import faster_int8, runs_float
from edgecls.export.quant.search.trials import TrialBench, acceptable

U8U8 = QuantRecipe("u8u8", weight_type="QUInt8")


def _images(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def tail_search(speed_models, tmp_path_factory) -> TrialBench:
    work = tmp_path_factory.mktemp("speed-step")
    fp32 = speed_models["tail"]
    quantizer = StaticQuantizer(fp32, ImageList("x", _images(16, 0), None, []), CONTRACT_224, work / "q")
    x = ImageList("x", _images(8, 1), None, []).inputs(CONTRACT_224)
    return TrialBench(quantizer, x, None, onnx_logits(fp32, x), work, log=lambda _m: None, fp32_path=fp32)


def _depthwise(quantizer: StaticQuantizer) -> list[str]:
    convs = [n for n in onnx.load(str(quantizer.pre_path)).graph.node if n.op_type == "Conv"]
    return [n.name for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]


def test_the_profile_names_each_conv_of_both_files(tail_search):
    pick = tail_search.try_recipe(QuantRecipe("u8s8"))
    int8, fp32 = profile_nodes(pick.path), profile_nodes(tail_search.fp32_path)
    convs = compare(int8, fp32)
    assert len(convs) == 11  # stem + 4 convs + 6 depthwise, matched by name across the two graphs
    assert {c.kind for c in convs} == {"3x3 conv", "depthwise conv"}
    assert all(c.int8_us > 0 and c.fp32_us > 0 for c in convs)
    totals = kind_totals(int8)
    assert totals["quantize/dequantize"] > 0 and "reorder (NCHWc layout)" in kind_totals(fp32)


def test_a_lone_float_conv_between_int8_neighbours_is_not_tried_float(tail_search, tmp_path):
    """onnxruntime gives a float conv between DequantizeLinear and QuantizeLinear per-tensor int8 weights: asking
    for it in float changes the weights, not the kernel. A float region of two is really float."""
    depthwise = _depthwise(tail_search.quantizer)
    lone = QuantRecipe("lone", nodes_to_exclude=(depthwise[2],))
    recipe, note = runs_float(tail_search, lone, (), tmp_path / "lone.onnx")
    assert recipe is None and "re-quantize" in note
    pair = QuantRecipe("pair", nodes_to_exclude=tuple(depthwise[2:4]))
    recipe, note = runs_float(tail_search, pair, (), tmp_path / "pair.onnx")
    assert recipe == pair and note == ""
    record = fusion_record(tmp_path / "pair.onnx")
    assert record["kept_float"] == 2 and record["requantized"] == 0 and record["float_convs"] == 2


def test_the_conv_counts_say_whose_float_convs_they_are(tail_search, tmp_path):
    """Issue 31 item 5: "36 int8 / 14 float convs" per trial beside "0 nodes in float" for an arm64 file."""
    depthwise = _depthwise(tail_search.quantizer)
    tail_search.quantizer.quantize(QuantRecipe("lone", nodes_to_exclude=(depthwise[2],)), tmp_path / "lone.onnx")
    lone = fusion_record(tmp_path / "lone.onnx")
    assert (lone["kept_float"], lone["requantized"], lone["float_convs"]) == (1, 1, 0)
    assert "the file keeps 1 float" in lone["line"] and "1 of those re-quantized by onnxruntime" in lone["line"]
    # The other way round: convs the file quantizes that onnxruntime here does not fuse (on x86 an arm64 s8s8
    # MobileNetV2 leaves 15 of 52 so, Lite0 14 of 50). Made here by reading a conv's output past its Q/DQ pair.
    tail_search.quantizer.quantize(QuantRecipe("u8s8"), tmp_path / "u8s8.onnx")
    model = onnx.load(str(tmp_path / "u8s8.onnx"))
    consumers = {i: n for n in model.graph.node for i in n.input}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    conv = next(n for n in convs if consumers[n.output[0]].op_type == "QuantizeLinear")
    dq = consumers[consumers[conv.output[0]].output[0]]
    consumers[dq.output[0]].input[0] = conv.output[0]  # the next node reads the float output
    onnx.save(model, str(tmp_path / "unfused.onnx"))
    unfused = fusion_record(tmp_path / "unfused.onnx")
    assert unfused["kept_float"] == 0 and unfused["float_convs"] >= 1
    assert unfused["unfused_here"] == unfused["float_convs"]
    line = unfused["line"]
    assert "the file keeps 0 float" in line and "not fused into int8 kernels by this CPU's onnxruntime" in line


@pytest.mark.slow
def test_the_speed_step_keeps_float_what_measures_faster_and_reports_per_kind(tail_search):
    """u8u8 convs run slower in int8 than in fp32 here; the 3x3 ones kept float together measured 0.70x the
    all-int8 file's time, the depthwise ones (a smaller gain) are not kept once the 3x3 ones are float."""
    pick = tail_search.try_recipe(U8U8)
    step = faster_int8(tail_search, pick, 100.0)
    kinds = {k["kind"]: k for k in step.kinds}
    assert kinds["3x3 conv"]["convs"] == 5 and kinds["depthwise conv"]["convs"] == 6
    assert kinds["quantize/dequantize"]["int8_us"] > 0 and kinds["quantize/dequantize"]["fp32_us"] == 0
    assert step.pick is not pick and "float-3x3-conv" in step.pick.recipe.name  # (a kernel option may follow)
    assert len(step.pick.float_nodes) == 5 and acceptable(step.pick, 100.0)
    # nearly every conv is slower in u8u8: all of them float is faster, but no longer an int8 file
    assert any(re.match(r"the \d+ convs slower", n) and "mostly float, not kept" in n for n in step.notes)
    assert any(n.startswith("every 3x3 conv kept float") and n.endswith(": kept") for n in step.notes)
    assert step.summary()[0].startswith("  int8 vs fp32 per node kind")
