"""Layer-wise reconstruction (AdaRound + bias re-fit) of a real QDQ file: it lowers the error on images it never
saw, keeps the int8 grid (each weight the floor or ceiling of its float value, 7-bit weights 7-bit, the same
fused graph), honours its time budget, and the search runs it when asked and reports it."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
import torch
from fixtures_export import FAST_QUANT
from fixtures_quant import colour_images
from onnx import numpy_helper
from torch import nn

from edgecls.export.onnx_export import export_to_onnx
from edgecls.export.parity import onnx_logits
from edgecls.export.quant.grading.evaluate import relative_error
from edgecls.export.quant.grading.fused_graph import fusion_counts
from edgecls.export.quant.grading.image_sets import ImageList
from edgecls.export.quant.options import QuantizeOptions
from edgecls.export.quant.pipeline import quantize_model
from edgecls.export.quant.qdq.static_quantizer import StaticQuantizer
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.export.quant.repairs.adaround import FitSettings, adaround
from edgecls.export.quant.repairs.layer_fit import LayerFit, LayerGeometry
from edgecls.export.quant.repairs.ordered_rounding import ordered_rounding
from edgecls.export.quant.repairs.qdq_sites import quantized_sites
from edgecls.export.quant.repairs.reconstruct import ReconstructSettings
from edgecls.runtime.contract.model_contract import ModelContract

CONTRACT = ModelContract(
    labels=tuple("abcdefgh"), input_size=(32, 32), resize_mode="stretch", mean=(0.5,) * 3, std=(0.25,) * 3
)
FAST = ReconstructSettings(images=48, steps=150)


class _MobileBlock(nn.Module):
    """Stem, an inverted residual block (expand, depthwise, project) and a linear head: Lite0 in miniature."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.expand = nn.Conv2d(16, 48, 1)
        self.dw = nn.Conv2d(48, 48, 3, padding=1, groups=48)
        self.project = nn.Conv2d(48, 16, 1)
        self.head = nn.Linear(16, 8)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (0.6 if p.ndim > 1 else 0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self.stem(x))
        y = nn.functional.relu6(self.dw(nn.functional.relu6(self.expand(x))))
        return self.head((x + self.project(y)).mean((2, 3)))


@pytest.fixture(scope="module")
def mobile_onnx(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("recon") / "mobile.onnx"
    export_to_onnx(_MobileBlock().eval(), CONTRACT, path, exporter="torchscript")
    return path


def _quantizer(src, tmp_path, settings: ReconstructSettings = FAST) -> StaticQuantizer:
    calib = ImageList("colours", colour_images(48, 0), None, [])
    return StaticQuantizer(src, calib, CONTRACT, tmp_path / "work", settings)


def _integers(path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.name: inits[w.input[0]] for n, w, _ in quantized_sites(model)}


@pytest.mark.parametrize("solver", ["ordered", "adaround"])
def test_reconstruction_lowers_the_error_on_unseen_images_and_keeps_the_grid(mobile_onnx, tmp_path, solver):
    quantizer = _quantizer(mobile_onnx, tmp_path, dataclasses.replace(FAST, solver=solver))
    plain = quantizer.quantize(QuantRecipe("u8s8"), tmp_path / "plain.onnx")
    learned = quantizer.quantize(QuantRecipe("u8s8", reconstruct=True), tmp_path / "learned.onnx")
    x = ImageList("colours", colour_images(64, 7), None, []).inputs(CONTRACT)  # never seen by either
    ref = onnx_logits(mobile_onnx, x)
    before, after = relative_error(onnx_logits(plain, x), ref), relative_error(onnx_logits(learned, x), ref)
    assert after < 0.8 * before, (before, after)
    note = quantizer.reconstruct_notes[QuantRecipe("u8s8", reconstruct=True).describe()]
    assert note["layers"] == 5 and note["improved"] >= 1 and note["not_reached"] == 0
    # the grid is kept: same scales, each integer the floor or ceiling of w / scale, same fused graph
    fp32 = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(quantizer.pre_path)).graph.initializer}
    model = onnx.load(str(learned))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    plain_ints = _integers(plain)
    changed = 0
    for node, wdq, _ in quantized_sites(model):
        q, scale = inits[wdq.input[0]].astype(np.float64), inits[wdq.input[1]].astype(np.float64)
        ratio = fp32[wdq.input[0].removesuffix("_quantized")] / scale.reshape((-1,) + (1,) * (q.ndim - 1))
        assert np.all((q == np.floor(ratio)) | (q == np.ceil(ratio))), node.name
        changed += int(np.sum(q != plain_ints[node.name]))
    assert changed > 0
    assert fusion_counts(learned)["int8_convs"] == fusion_counts(plain)["int8_convs"]


def test_seven_bit_weights_stay_seven_bit(mobile_onnx, tmp_path):
    quantizer = _quantizer(mobile_onnx, tmp_path)
    recipe = QuantRecipe("rr", reduce_range=True, depthwise_full_range=True, reconstruct=True)
    plain = _integers(
        quantizer.quantize(QuantRecipe("rr", reduce_range=True, depthwise_full_range=True), tmp_path / "p.onnx")
    )
    learned = _integers(quantizer.quantize(recipe, tmp_path / "rr.onnx"))
    for name, q in learned.items():
        dims = tuple(range(1, q.ndim))
        assert np.all(np.abs(q).max(axis=dims) <= np.abs(plain[name]).max(axis=dims)), name
    assert max(int(np.abs(q).max()) for q in learned.values()) <= 127
    assert any(int(np.abs(q).max()) <= 64 for q in learned.values())  # the 7-bit GEMM convs exist and stayed 7-bit


def test_the_time_cap_names_the_layers_it_left_at_post_training_rounding(mobile_onnx, tmp_path):
    said: list[str] = []
    calib = ImageList("colours", colour_images(48, 0), None, [])
    quantizer = StaticQuantizer(
        mobile_onnx, calib, CONTRACT, tmp_path / "w", ReconstructSettings(seconds=0.0), log=said.append
    )
    plain = _integers(quantizer.quantize(QuantRecipe("u8s8"), tmp_path / "plain.onnx"))
    path = quantizer.quantize(QuantRecipe("u8s8", reconstruct=True), tmp_path / "late.onnx")
    note = next(iter(quantizer.reconstruct_notes.values()))
    assert note["not_reached"] == note["layers"] == 5 and note["improved"] == 0
    assert note["left"] == list(plain)  # every layer, in graph order
    assert all(np.array_equal(q, plain[name]) for name, q in _integers(path).items())
    capped = [m for m in said if "time cap" in m]
    assert len(capped) == 1 and all(name in capped[0] for name in plain)


def test_a_graph_too_big_for_the_memory_bound_learns_from_fewer_images(mobile_onnx, tmp_path):
    quantizer = _quantizer(mobile_onnx, tmp_path, ReconstructSettings(images=48, max_bytes=1))
    path = quantizer.quantize(QuantRecipe("u8s8", reconstruct=True), tmp_path / "small.onnx")
    note = next(iter(quantizer.reconstruct_notes.values()))
    assert note["images"] == 16  # one batch at least, then the bound stops it
    assert note["not_reached"] == 0 and note["layers"] == 5
    plain = quantizer.quantize(QuantRecipe("u8s8"), tmp_path / "plain.onnx")
    assert fusion_counts(path)["int8_convs"] == fusion_counts(plain)["int8_convs"] == 5


@pytest.mark.slow  # reconstruction inside the int8 search: 53 s at load 5-13
def test_the_search_reconstructs_when_asked_and_reports_it(mobile_onnx, tmp_path):
    calib = ImageList("colours", colour_images(48, 0), None, [])
    val = ImageList("colours", colour_images(96, 1), None, [])
    for mode in ("on", "off"):
        opts = QuantizeOptions(max_drop=100.0, reconstruct=mode, **FAST_QUANT)
        report = quantize_model(
            mobile_onnx, tmp_path / f"{mode}.int8.onnx", calib, val, CONTRACT, opts, lambda _m: None
        )
        notes = [r for r in report.repairs if r.startswith("layer-wise reconstruction")]
        tried = [t for t in report.trials if t.recipe.reconstruct]
        if mode == "on":
            assert len(notes) == 1 and "layers improved" in notes[0] and len(tried) == 1
        else:
            assert not notes and not tried


def test_a_capped_reconstruction_warns_with_the_layers_left_and_their_held_out_cost(mobile_onnx, tmp_path):
    calib = ImageList("colours", colour_images(48, 0), None, [])
    val = ImageList("colours", colour_images(96, 1), None, [])
    opts = QuantizeOptions(max_drop=100.0, reconstruct="on", reconstruct_seconds=0.0, **FAST_QUANT)
    report = quantize_model(mobile_onnx, tmp_path / "m.int8.onnx", calib, val, CONTRACT, opts, lambda _m: None)
    [warning] = [w for w in report.warnings if "--max-learning-seconds cap" in w]
    assert "5 of 5 layers" in warning and "held-out images" in warning
    assert all(name in warning for name in _integers(tmp_path / "m.int8.onnx"))
    assert "--max-learning-seconds cap" in (tmp_path / "quantization_report.md").read_text()


def _whole_graph_tensor(model: onnx.ModelProto, name: str, x: np.ndarray) -> np.ndarray:
    """``name`` over ``x`` from one session of the whole graph that outputs only it (what reconstruction computed
    for every layer before its caches), with the same session options."""
    from edgecls.export.quant.repairs.layer_tensors import session
    from edgecls.export.quant.repairs.qdq_sites import with_outputs

    sess = session(with_outputs(model, [name]), precise=False, threads=1)
    return np.concatenate(
        [sess.run([name], {sess.get_inputs()[0].name: x[i : i + 16]})[0] for i in range(0, len(x), 16)]
    )


def test_fp32_targets_computed_on_from_the_previous_layer_are_the_whole_graph_ones(mobile_onnx):
    from edgecls.export.quant.repairs.layer_tensors import GraphTensors

    x = ImageList("colours", colour_images(40, 2), None, []).inputs(CONTRACT)
    model = onnx.load(str(mobile_onnx))
    tensors = GraphTensors(model, x, precise=False, threads=1)
    for name in [n.output[0] for n in model.graph.node if n.op_type in ("Conv", "Gemm")]:
        # equal up to the float rounding of onnxruntime's fusions, which the outputs asked change
        np.testing.assert_allclose(tensors.tensor(name), _whole_graph_tensor(model, name, x), rtol=1e-4, atol=1e-5)
    assert tensors.incremental and tensors.done == set(range(len(model.graph.node)))


def test_int8_inputs_computed_on_from_the_previous_layer_are_the_whole_graph_ones(mobile_onnx, tmp_path):
    from edgecls.export.quant.repairs.layer_tensors import GraphTensors

    path = _quantizer(mobile_onnx, tmp_path).quantize(QuantRecipe("u8s8"), tmp_path / "plain.onnx")
    model = onnx.load(str(path))
    x = ImageList("colours", colour_images(40, 2), None, []).inputs(CONTRACT)
    tensors = GraphTensors(model, x, precise=False, threads=1)
    inits = {i.name: i for i in model.graph.initializer}
    for node, wdq, _ in quantized_sites(model):
        got, want = tensors.tensor(node.input[0]), _whole_graph_tensor(model, node.input[0], x)
        # the same int8 values, but where a fused and an unfused kernel round a tie apart (one step, rare)
        step = float(np.min(np.diff(np.unique(want))))
        assert np.abs(got - want).max() <= step * 1.01 and np.mean(got != want) < 1e-4, node.name
        # as reconstruction does, change this layer's integers: the next layer's inputs must see the change
        q = numpy_helper.to_array(inits[wdq.input[0]])
        inits[wdq.input[0]].CopyFrom(numpy_helper.from_array((q // 2).astype(q.dtype), wdq.input[0]))
    assert tensors.incremental
    assert tensors.held_bytes() < 3 * x.nbytes  # only the tensors between layers, not every layer's


def _one_layer(offset: float) -> tuple[LayerFit, torch.Tensor]:
    """A 1x1 conv whose float weights sit ``offset`` grid steps above integers, its inputs (4 channels that share
    most of their signal, as a real layer's do) and exact outputs; and those integers."""
    rng = np.random.default_rng(0)
    scale = np.full(8, 0.05, np.float32)
    integers = rng.integers(-60, 60, (8, 4, 1, 1)).astype(np.float32)
    x = (rng.normal(0, 1, (64, 1, 6, 6)) + 0.3 * rng.normal(0, 1, (64, 4, 6, 6))).astype(np.float32)
    w = ((integers + offset) * scale.reshape(-1, 1, 1, 1)).astype(np.float32)
    y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w)).numpy()
    return LayerFit(LayerGeometry(conv=True), x, y, (-np.inf, np.inf), w, scale), torch.from_numpy(integers)


def test_a_layer_whose_rounding_has_settled_stops_before_its_step_count():
    idx = torch.arange(64)
    # float weights on the int8 grid: nothing to learn, the rounding is decided from the start and the error flat
    fit, integers = _one_layer(0.0)
    learned, steps = adaround(fit, fit.moments(idx), torch.zeros(8), integers, FitSettings(steps=400))
    assert steps < 400
    assert torch.equal(learned, integers)
    # weights half-way between two grid points and no regulariser: nothing pushes h(V) to 0 or 1, every step runs
    fit, integers = _one_layer(0.5)
    _, steps = adaround(fit, fit.moments(idx), torch.zeros(8), integers, FitSettings(steps=120, reg_weight=0.0))
    assert steps == 120


def test_ordered_rounding_beats_rounding_to_nearest_on_the_layer_it_learned_from():
    fit, integers = _one_layer(0.45)  # nearest rounding is 0.45 steps low everywhere: the errors add up
    idx, bias = torch.arange(64), torch.zeros(8)
    ordered = ordered_rounding(fit, fit.moments(idx), bias, integers + 1)
    nearest = torch.round(fit.float_weight / fit.scale)
    assert torch.all((ordered == integers) | (ordered == integers + 1))
    errors = [fit.error(q * fit.scale, fit.refit_bias(q * fit.scale, bias, idx), idx) for q in (ordered, nearest)]
    assert errors[0] < 0.5 * errors[1], errors


def test_the_same_images_make_the_same_file_on_a_busy_machine(mobile_onnx, tmp_path):
    """Reconstruction is bounded by counts: a second busy process per core changes when it finishes, not what it
    writes (torch on one thread, so its sums do not depend on scheduling)."""
    import os
    import subprocess
    import sys

    recipe = QuantRecipe("u8s8", reconstruct=True)
    quiet = _quantizer(mobile_onnx, tmp_path / "a").quantize(recipe, tmp_path / "quiet.onnx")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        loaded = _quantizer(mobile_onnx, tmp_path / "b").quantize(recipe, tmp_path / "loaded.onnx")
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert quiet.read_bytes() == loaded.read_bytes()
    plain = _integers(_quantizer(mobile_onnx, tmp_path / "c").quantize(QuantRecipe("u8s8"), tmp_path / "p.onnx"))
    assert any(not np.array_equal(q, plain[n]) for n, q in _integers(quiet).items())  # it did learn something
