"""Layer-wise reconstruction (AdaRound + bias re-fit) of a real QDQ file: it lowers the error on images it never
saw, keeps the int8 grid (each weight the floor or ceiling of its float value, 7-bit weights 7-bit, the same
fused graph), honours its time budget, and the search runs it when asked and reports it."""

from __future__ import annotations

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
from edgecls.export.quant.evaluate import relative_error
from edgecls.export.quant.fused_graph import fusion_counts
from edgecls.export.quant.image_sets import ImageList
from edgecls.export.quant.options import QuantizeOptions
from edgecls.export.quant.pipeline import quantize_model
from edgecls.export.quant.qdq_sites import quantized_sites
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.export.quant.reconstruct import ReconstructSettings
from edgecls.export.quant.static_quantizer import StaticQuantizer
from edgecls.runtime.contract.model_contract import ModelContract

CONTRACT = ModelContract(
    labels=tuple("abcdefgh"), input_size=(32, 32), resize_mode="stretch", mean=(0.5,) * 3, std=(0.25,) * 3
)
FAST = ReconstructSettings(images=48, steps=150, batch=8, patch=8)


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


@pytest.mark.slow  # reconstruction: 9 s at load 5-13
def test_reconstruction_lowers_the_error_on_unseen_images_and_keeps_the_grid(mobile_onnx, tmp_path):
    quantizer = _quantizer(mobile_onnx, tmp_path)
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


def test_no_time_left_leaves_the_file_as_post_training_wrote_it(mobile_onnx, tmp_path):
    quantizer = _quantizer(mobile_onnx, tmp_path, ReconstructSettings(seconds=0.0))
    plain = _integers(quantizer.quantize(QuantRecipe("u8s8"), tmp_path / "plain.onnx"))
    path = quantizer.quantize(QuantRecipe("u8s8", reconstruct=True), tmp_path / "late.onnx")
    note = next(iter(quantizer.reconstruct_notes.values()))
    assert note["not_reached"] == note["layers"] == 5 and note["improved"] == 0
    assert all(np.array_equal(q, plain[name]) for name, q in _integers(path).items())


def test_a_layer_too_big_for_the_memory_bound_learns_from_fewer_images(mobile_onnx, tmp_path):
    from edgecls.export.quant.reconstruct import _Runner

    x = ImageList("colours", colour_images(48, 0), None, []).inputs(CONTRACT)
    model = onnx.load(str(mobile_onnx))
    name = next(n.output[0] for n in model.graph.node if n.op_type == "Conv")
    runner = _Runner(x, precise=False)
    assert len(runner.tensor(model, name, np.inf)) == 48
    assert len(runner.tensor(model, name, 1)) == 16  # one batch at least, then the bound stops it
    assert len(runner.tensor(model, name, np.inf, images=20)) == 20
    quantizer = _quantizer(mobile_onnx, tmp_path, ReconstructSettings(images=48, steps=50, batch=8, max_bytes=1))
    path = quantizer.quantize(QuantRecipe("u8s8", reconstruct=True), tmp_path / "small.onnx")
    note = next(iter(quantizer.reconstruct_notes.values()))
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
        notes = [r for r in report.refinements if r.startswith("layer-wise reconstruction")]
        tried = [t for t in report.trials if t["reconstruct"]]
        if mode == "on":
            assert len(notes) == 1 and "layers improved" in notes[0] and len(tried) == 1
        else:
            assert not notes and not tried
