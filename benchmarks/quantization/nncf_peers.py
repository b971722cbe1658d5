"""NNCF (OpenVINO's post-training quantizer) as peer rows of the int8 benchmark, measured in the same run.

NNCF is not an edgecls dependency: it is installed into the benchmark's environment only, from
``requirements-peers.txt`` (:data:`INSTALL`), and imported inside the functions here, so importing this module
(or any benchmark script that imports it) works without it.

Rows (:func:`nncf_variants`), each ``nncf.quantize`` of the same fp32 ONNX file, calibrated on every image of
the calibration set (``subset_size=len(calib)``; NNCF's default 300 would take fewer when there are more):

- :data:`OV_DEFAULT`: NNCF's own path. The fp32 ONNX read by OpenVINO as ``ov.convert_model`` makes it
  (:func:`openvino_model`), quantized with NNCF's defaults, written as OpenVINO IR (.xml/.bin) and run on
  OpenVINO: what an OpenVINO user gets.
- :data:`OV_ACCURATE_BC`: the same with ``fast_bias_correction=False``, NNCF's slower per-layer bias correction
  (NNCF's docs call it "more accurate, in general"); it corrects all 50 of Lite0's biases, where the fast
  one leaves the 16 depthwise convs alone (34 of 50).
- :data:`ONNX_DEFAULT`: NNCF's ONNX backend on the ``onnx.ModelProto``, written as .onnx and run on
  onnxruntime: the same algorithm on the runtime the other rows of the study use.

Why no ``preset`` or ``model_type``: in nncf 3.4.0 (``nncf/quantization/algorithms/min_max/algorithm.py``,
``_set_mode_based_params``) ``preset=None`` means ``performance`` (symmetric int8 weights *and* activations)
for every model that is not ``model_type=TRANSFORMER``; ``mixed`` (asymmetric activations) is the default for
transformers only. ``model_type=None`` is the CNN case. So the defaults already are NNCF's recommended setting
for this EfficientNet-Lite0, and the rows say "default" (every zero point in the files is 0). Other defaults
that shape the result: target device ANY, 7-bit weights in the first layer only (``OverflowFix.FIRST_LAYER``),
MinMax ranges, then bias correction; channel alignment and SmoothQuant are off.

Why not ``Core().read_model`` alone: for an ONNX Conv with a bias and a dynamic batch, OpenVINO's ONNX reader
adds the bias through a ``Reshape`` computed from the output's shape, not a constant. NNCF finds a bias only as
a constant after the conv (``nncf/openvino/graph/node_utils.py``, ``get_add_bias_node``), so on that graph it
found none of Lite0's 50 biases: fast and accurate bias correction both did nothing, silently, and the two
OpenVINO rows were the same file (measured 2026-12-02). ``ov.convert_model`` folds the reshape (its
``apply_moc_transformations(cf=False, smart_reshape=True)``, ``openvino/tools/ovc/moc_frontend/moc_emit_ir.py``);
:func:`openvino_model` applies that same transformation to the read model instead of calling the converter,
which would start OpenVINO's converter telemetry. It logs how many biases NNCF can see.

Calibration items are single images (batch 1): ``subset_size`` counts dataset items, and NNCF's statistics
assume one image per item unless told otherwise (its batchwise statistics come with an accuracy warning).

Telemetry: nncf sends usage events through ``openvino-telemetry`` unless ``NNCF_CI`` is set when it is first
imported (``nncf/telemetry/wrapper.py``); :func:`import_nncf` sets it and refuses an nncf imported without it.

The IR is saved with ``compress_to_fp16=False`` (``openvino.save_model`` would otherwise store the constants left
in float, e.g. biases, as fp16), so the file holds exactly what NNCF produced. The study runs an IR on OpenVINO
in f32 (``measure_variants.openvino_f32_session``): on a CPU with AMX or AVX-512 BF16 OpenVINO would otherwise
run what stays float in bf16, and the row would measure that as well.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from quant_variants import onnx_input_name
from study_env import log

from edgecls.export.quant.grading.image_sets import ImageList
from edgecls.runtime.contract.model_contract import ModelContract

#: Installs NNCF (and only what it adds) into the benchmark's environment, keeping constraints.txt's versions.
INSTALL = "python -m pip install -c constraints.txt -r benchmarks/quantization/requirements-peers.txt"

OV_DEFAULT = "NNCF default (OpenVINO)"
OV_ACCURATE_BC = "NNCF without fast bias correction (OpenVINO)"
ONNX_DEFAULT = "NNCF default (ONNX, run on onnxruntime)"


class NNCFMissingError(ImportError):
    """nncf is not installed: the NNCF rows cannot be made (it is not an edgecls dependency)."""


def import_nncf() -> Any:
    """``import nncf`` with its telemetry off, or :class:`NNCFMissingError` saying how to install it."""
    os.environ["NNCF_CI"] = "1"  # read once, at nncf's first import: telemetry becomes a stub that sends nothing
    try:
        import nncf
    except ImportError as e:
        raise NNCFMissingError(
            f"the NNCF rows need nncf, which is not an edgecls dependency; install it into this environment "
            f"from the repository root with: {INSTALL}"
        ) from e
    from nncf.telemetry import wrapper

    if not isinstance(wrapper.telemetry, wrapper.NNCFTelemetryStub):
        raise RuntimeError("nncf was imported before NNCF_CI was set, so its telemetry is on: import it here first")
    return nncf


def peer_versions() -> dict[str, str]:
    """nncf's and openvino's versions, for the results file (imports both)."""
    from edgecls.runtime.providers.openvino import import_openvino

    return {"nncf": import_nncf().__version__, "openvino": import_openvino().__version__.split("-")[0]}


def nncf_variants(fp32: Path, calib: ImageList, contract: ModelContract, work: Path) -> dict[str, Path]:
    """The three NNCF rows (see the module docstring) -> their int8 files: two OpenVINO IR .xml, one .onnx."""
    nncf = import_nncf()
    import onnx

    from edgecls.runtime.providers.openvino import import_openvino

    ov = import_openvino()
    work.mkdir(parents=True, exist_ok=True)
    x = calib.inputs(contract)  # preprocessed once: NNCF passes over the set once per algorithm
    images = [x[i : i + 1] for i in range(len(x))]
    name = onnx_input_name(fp32)
    out: dict[str, Path] = {}
    for label, kw in ((OV_DEFAULT, {}), (OV_ACCURATE_BC, {"fast_bias_correction": False})):
        log(f"[nncf] {label}: nncf.quantize on {len(images)} images")
        model = openvino_model(fp32)
        quantized = nncf.quantize(model, nncf.Dataset(images), subset_size=len(images), **kw)
        path = work / f"nncf-ov-{len(out)}.xml"
        ov.save_model(quantized, str(path), compress_to_fp16=False)
        out[label] = path
    log(f"[nncf] {ONNX_DEFAULT}: nncf.quantize on {len(images)} images")
    dataset = nncf.Dataset(images, lambda b: {name: b})  # NNCF's onnxruntime engine takes a feed dict
    quantized = nncf.quantize(onnx.load(str(fp32)), dataset, subset_size=len(images))
    out[ONNX_DEFAULT] = work / "nncf-onnx.onnx"
    onnx.save(quantized, str(out[ONNX_DEFAULT]))
    return out


def openvino_model(fp32: Path) -> Any:
    """The fp32 ONNX as an OpenVINO model the way ``ov.convert_model`` gives it (why: the module docstring)."""
    from openvino._offline_transformations import apply_moc_transformations

    from edgecls.runtime.providers.openvino import import_openvino

    model = import_openvino().Core().read_model(str(fp32))
    apply_moc_transformations(model, cf=False, smart_reshape=True)  # what ovc applies to every ONNX model
    weighted = [op for op in model.get_ordered_ops() if op.get_type_name() in _WEIGHTED]
    biased = sum(_has_constant_bias(op) for op in weighted)
    log(f"[nncf] OpenVINO model: {biased} of {len(weighted)} conv/matmul outputs have a constant bias NNCF can correct")
    return model


_WEIGHTED = ("Convolution", "GroupConvolution", "MatMul")


def _has_constant_bias(op: Any) -> bool:
    """An ``Add`` of a constant right after the op: the only bias NNCF's OpenVINO backend corrects."""
    adds = [t.get_node() for t in op.output(0).get_target_inputs() if t.get_node().get_type_name() == "Add"]
    return any(add.input_value(1).get_node().get_type_name() == "Constant" for add in adds)
