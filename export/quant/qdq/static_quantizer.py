"""onnxruntime static QDQ quantization, prepared once and repeatable per recipe.

``StaticQuantizer`` runs ``quant_pre_process`` (shape inference + graph optimisation, BN folding) once,
takes activation ranges from one statistics pass shared by every recipe (``range_sources``: MinMax, the
per-tensor method choice, the cross-layer equalised graph; other onnxruntime methods calibrate once each
through its calibration cache), and then writes an int8 QDQ model for any recipe (types, reduce_range,
equalisation, nodes kept in float), so the accuracy-budget search can afford many variants. Calibration
batches come from the runtime's ``preprocess_batch``; at most ``CALIB_STRIDE`` batches of activations are held
in memory at a time by onnxruntime's calibrators.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgecls.export.quant.grading.fused_graph import SENSITIVE_OPS
from edgecls.export.quant.grading.image_sets import ImageList, evenly_spaced
from edgecls.export.quant.qdq.range_sources import OWN_METHODS, TrialSources
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.export.quant.repairs.bias_correction import correct_biases
from edgecls.export.quant.repairs.reconstruct import ReconstructSettings, reconstruct_layers
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.errors import EdgeclsError

CALIB_BATCH = 8
CALIB_STRIDE = 8  # batches per collect_data() call: bounds memory (MobileNetV2 at 224 px: ~25 MB/image)
BIAS_CORRECTION_IMAGES = 64  # calibration images whose per-channel output means drive bias correction



class QuantizationError(EdgeclsError):
    """onnxruntime could not quantize the model."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization logs advice at WARNING level on every call; keep the user's terminal clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _calibration_reader(images: ImageList, contract: ModelContract, input_name: str) -> object:
    """A CalibrationDataReader over preprocessed batches that supports strided collection."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.n_batches = (len(images) + CALIB_BATCH - 1) // CALIB_BATCH
            self.set_range(0, self.n_batches)

        def __len__(self) -> int:
            return self.n_batches

        def set_range(self, start_index: int, end_index: int) -> None:
            self._next, self._end = start_index, min(end_index, self.n_batches)

        def get_next(self) -> dict | None:
            if self._next >= self._end:
                return None
            i = self._next * CALIB_BATCH
            self._next += 1
            # float32[B, 3, h, w], exactly what the device feeds the model
            return {input_name: images.inputs_slice(contract, i, i + CALIB_BATCH)}

    return _Reader()


def _stride(n_batches: int) -> int:
    """Largest divisor of n_batches not above CALIB_STRIDE (onnxruntime requires an exact division)."""
    return max(d for d in range(1, min(CALIB_STRIDE, n_batches) + 1) if n_batches % d == 0)


class StaticQuantizer:
    """Quantize one fp32 model repeatedly with different recipes, sharing pre-processing and calibration."""

    def __init__(
        self,
        fp32_path: str | os.PathLike[str],
        calibration: ImageList,
        contract: ModelContract,
        workdir: str | os.PathLike[str],
        reconstruction: ReconstructSettings | None = None,
        precise: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """``reconstruction``: how recipes with ``reconstruct`` learn their layers; ``precise``: the int8 graph's
        tensors that drive it are computed with onnxruntime's exact kernels (the target is not this CPU)."""
        self.workdir = Path(workdir)
        self.reconstruction = reconstruction or ReconstructSettings()
        self.precise = precise
        self.log = log
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.calibration = calibration
        self.contract = contract
        self.pre_path = self.workdir / "preprocessed.onnx"
        self.preprocess_note = self._pre_process(Path(fp32_path))
        model = onnx.load(str(self.pre_path), load_external_data=False)
        inits = {i.name for i in model.graph.initializer}
        self.input_name = next(i.name for i in model.graph.input if i.name not in inits)
        self._bias_inputs_cache: np.ndarray | None = None  # float32[n, 3, h, w]
        self.depthwise_weights = depthwise_weight_names(model)
        self.bias_notes: dict[str, dict[str, float]] = {}  # recipe description -> correction summary
        self.reconstruct_notes: dict[str, dict[str, Any]] = {}  # recipe description -> reconstruction summary
        self.sources = TrialSources(self.pre_path, self.workdir, self._calibration_batches)
        self._bias_means: dict[str, dict[str, np.ndarray]] = {}  # float graph -> conv input statistics

    def _calibration_batches(self) -> Iterator[np.ndarray]:
        for i in range(0, len(self.calibration), CALIB_BATCH):
            yield self.calibration.inputs_slice(self.contract, i, i + CALIB_BATCH)  # float32[B, 3, h, w]

    def float_path(self, recipe: QuantRecipe) -> Path:
        """The float graph ``recipe`` quantizes (same node names as ``pre_path``)."""
        return self.sources.source(recipe.equalize)

    def _calibration_subset(self, n: int) -> np.ndarray:
        """float32[n, 3, h, w]: an evenly spread subset of the calibration images."""
        idx = evenly_spaced(len(self.calibration), n)
        return ImageList("", [self.calibration.images[i] for i in idx], None, []).inputs(self.contract)

    def _bias_correct(self, path: Path, recipe: QuantRecipe) -> None:
        if self._bias_inputs_cache is None:
            self._bias_inputs_cache = self._calibration_subset(BIAS_CORRECTION_IMAGES)
        source = self.float_path(recipe)
        means = self._bias_means.setdefault(str(source), {})  # the same float graph: its statistics once
        self.bias_notes[recipe.describe()] = correct_biases(
            path, onnx.load(str(source)), self._bias_inputs_cache, means
        )

    def _reconstruct(self, path: Path, recipe: QuantRecipe) -> None:
        inputs = self._calibration_subset(self.reconstruction.images)
        self.reconstruct_notes[recipe.describe()] = reconstruct_layers(
            path, onnx.load(str(self.float_path(recipe))), inputs, self.reconstruction, self.precise, self.log
        ).to_dict()

    def _pre_process(self, fp32_path: Path) -> str:
        """quant_pre_process (symbolic shape inference + ORT basic optimisation); names every node."""
        from onnxruntime.quantization.shape_inference import quant_pre_process

        note = "quant_pre_process"
        try:
            with _quiet():
                quant_pre_process(str(fp32_path), str(self.pre_path))
        except Exception as e:  # some graphs defeat symbolic shape inference; quantize them as they are
            note = f"quant_pre_process skipped ({type(e).__name__}: {str(e).strip()[:120]})"
            onnx.save(onnx.load(str(fp32_path)), str(self.pre_path))
        model = onnx.load(str(self.pre_path))
        seen: set[str] = set()
        for i, node in enumerate(model.graph.node):  # nodes_to_exclude works by name: names must exist
            if not node.name or node.name in seen:
                node.name = f"{node.op_type}_{i}"
            seen.add(node.name)
        onnx.save(model, str(self.pre_path))
        return note

    def quantize(self, recipe: QuantRecipe, out_path: str | os.PathLike[str]) -> Path:
        """Write the int8 QDQ model for ``recipe`` (scratch path; the caller publishes it atomically)."""
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        source = self.float_path(recipe)
        if recipe.calibrate_method in OWN_METHODS:  # ranges from the one shared statistics pass
            cache = self.sources.range_cache(recipe.calibrate_method, recipe.equalize)
        else:
            cache = self.workdir / f"ranges-{recipe.calibrate_method}.json"
        reader = _calibration_reader(self.calibration, self.contract, self.input_name)
        extra = {"CalibStridedMinMax": _stride(len(reader))}  # strided collection works for every method
        if recipe.calibrate_method == "Percentile":
            extra["CalibPercentile"] = 99.999
        if recipe.activation_symmetric:
            extra["ActivationSymmetric"] = True
        if recipe.reduce_range and recipe.depthwise_full_range:
            # 8-bit weights where the products cannot saturate (recipes.QuantRecipe.depthwise_full_range)
            extra["TensorQuantOverrides"] = {w: [{"axis": 0, "reduce_range": False}] for w in self.depthwise_weights}
        try:
            with _quiet():
                quantize_static(
                    str(source),
                    str(out_path),
                    calibration_data_reader=reader,
                    quant_format=QuantFormat.QDQ,
                    per_channel=recipe.per_channel,
                    reduce_range=recipe.reduce_range,
                    activation_type=QuantType[recipe.activation_type],
                    weight_type=QuantType[recipe.weight_type],
                    nodes_to_exclude=list(recipe.nodes_to_exclude) or None,
                    calibrate_method=CalibrationMethod[
                        "MinMax" if recipe.calibrate_method in OWN_METHODS else recipe.calibrate_method
                    ],
                    extra_options=extra,
                    calibration_cache_path=str(cache),
                )
        except Exception as e:
            msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise QuantizationError(f"onnxruntime could not quantize the model ({recipe.describe()}): {msg}") from e
        if recipe.bias_correction:
            self._bias_correct(Path(out_path), recipe)
        if recipe.reconstruct:
            self._reconstruct(Path(out_path), recipe)
        return Path(out_path)


def depthwise_weight_names(model: onnx.ModelProto) -> list[str]:
    """Weight initializers of depthwise convolutions (group = input channels = output channels, > 1)."""
    inits = {i.name: i for i in model.graph.initializer}
    names = []
    for node in model.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        weight = inits.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if weight is not None and group > 1 and weight.dims[0] == group and weight.dims[1] == 1:
            names.append(weight.name)
    return names


def float_units(pre_path: str | os.PathLike[str], nodes: list[str]) -> dict[str, tuple[str, ...]]:
    """For each node, the set that must be excluded together for its activation input to stay float.

    In QDQ a tensor stays float only when its producer and all its consumers are excluded, so keeping node
    N in float means excluding N and the compute nodes that produce its inputs (found by walking back
    through data-movement ops such as Relu, Clip, MaxPool, Reshape). Example: conv2 <- Relu <- conv1 gives
    (conv2, conv1).
    """
    model = onnx.load(str(pre_path), load_external_data=False)
    producer = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name for i in model.graph.initializer}
    by_name = {n.name: n for n in model.graph.node}
    units: dict[str, tuple[str, ...]] = {}
    for name in nodes:
        unit = [name]
        node = by_name.get(name)
        for tensor in [] if node is None else [t for t in node.input if t and t not in inits]:
            prev = producer.get(tensor)
            for _ in range(8):  # a short chain of pass-through ops at most
                if prev is None or prev.op_type in SENSITIVE_OPS or not prev.input:
                    break
                prev = producer.get(prev.input[0])
            if prev is not None and prev.op_type in SENSITIVE_OPS and prev.name not in unit:
                unit.append(prev.name)
        units[name] = tuple(unit)
    return units


def quantized_compute_nodes(int8_path: str | os.PathLike[str]) -> list[str]:
    """Names of compute nodes that consume int8 (DequantizeLinear) inputs: the candidates to keep in float."""
    model = onnx.load(str(int8_path))
    dq_outputs = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return [n.name for n in model.graph.node if n.op_type in SENSITIVE_OPS and any(i in dq_outputs for i in n.input)]
