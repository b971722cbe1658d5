"""OpenCV DNN baseline: the fp32 ONNX model run by ``cv2.dnn.readNetFromONNX`` on OpenCV's own CPU backend.

It answers "is onnxruntime worth it over the OpenCV I already ship?". Only fp32 models are offered: OpenCV DNN
5.0 could not load the QDQ int8 models edgecls writes (``readNetFromONNX`` on a QDQ EfficientNet-Lite0, opencv-python
5.0, a 2-core AMD EPYC, November 2026). When OpenCV cannot load or run a model,
the benchmark row carries OpenCV's message as its error; nothing else is affected.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.bench.rows import ENGINE_OPENCV, BenchTarget, LoadedRunner
from edgecls.runtime.bench.targets import file_size
from edgecls.runtime.errors import ModelLoadError

OPENCV_LOADER = "edgecls.runtime.bench.baselines.opencv_dnn:load_opencv_dnn"


def load_opencv_dnn(model: str, provider: str = "cpu", threads: int | None = None, **_: Any) -> LoadedRunner:
    """Read ``model`` with OpenCV DNN; ``infer`` maps ``float32[N, 3, h, w]`` to ``float32[N, C]``."""
    import cv2

    if threads:
        cv2.setNumThreads(int(threads))
    try:
        net = cv2.dnn.readNetFromONNX(str(model))
    except cv2.error as e:
        last = str(e).strip().splitlines()[-1] if str(e).strip() else "cv2.error"
        raise ModelLoadError(f"{model}: OpenCV DNN cannot load this model ({last})") from e
    if net.empty():
        raise ModelLoadError(f"{model}: OpenCV DNN returned an empty network")
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def infer(batch: np.ndarray) -> np.ndarray:
        net.setInput(np.ascontiguousarray(batch, dtype=np.float32))
        out = net.forward()
        return out.reshape(batch.shape[0], -1)

    # OpenCV does not expose the ONNX input shape: spatial size comes from the target's contract.
    return LoadedRunner(
        infer=infer,
        input_shape=(None, 3, None, None),
        input_dtype="float32",
        providers_used=[f"OpenCV {cv2.__version__} DNN_BACKEND_OPENCV/CPU"],
        size_bytes=file_size(model),
    )


def opencv_baseline(target: BenchTarget) -> BenchTarget:
    """The OpenCV DNN row for an fp32 onnxruntime target (same model file, family and contract)."""
    return BenchTarget(
        label=f"OpenCV DNN ({Path(target.model).name})",
        model=target.model,
        engine=ENGINE_OPENCV,
        variant="fp32",
        family=target.family,
        loader=OPENCV_LOADER,
        contract_json=target.contract_json,
        size_bytes=target.size_bytes,
        options={"device": "opencv-cpu"},
        imports=("cv2",),
    )


def opencv_baselines(targets: Sequence[BenchTarget]) -> list[BenchTarget]:
    """One OpenCV DNN baseline per loadable fp32 onnxruntime target."""
    return [
        opencv_baseline(t)
        for t in targets
        if t.engine != ENGINE_OPENCV and not t.is_baseline and t.variant == "fp32" and not t.load_error
    ]
