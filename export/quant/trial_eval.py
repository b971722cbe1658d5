"""One int8 trial measured with one onnxruntime session: accuracy, batch-1 latency and the fused graph.

Measuring them separately (``quant_eval.measure_accuracy``, ``quant_eval.latency_ms``,
``quant_graph.fusion_counts``) builds three sessions of the same file, and building a session of a QDQ graph
(its fusions and layout transforms) costs about as much as running the search images through it. Here the
session that computes the accuracy also writes its optimised graph (``optimized_model_filepath``) and is then
timed. Only when accuracy is graded with onnxruntime's exact kernels (a target that is not this CPU) does
speed need a second, ordinary session.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgecls.export.quant.evaluate import PRECISE_KERNELS_KEY, Accuracy, score_logits, session_latency_ms
from edgecls.export.quant.fused_graph import count_fused_ops

BATCH = 64


@dataclass
class TrialMeasurement:
    accuracy: Accuracy
    latency_p50_ms: float
    fusion: dict[str, Any]  # quant_graph.count_fused_ops


def _session(path: Path, precise: bool, optimized: Path | None) -> Any:
    import onnxruntime as ort

    from edgecls.runtime.providers.session import session_options

    so = session_options()
    if precise:
        so.add_session_config_entry(PRECISE_KERNELS_KEY, "1")
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def measure_trial(
    path: str | os.PathLike[str],
    inputs: np.ndarray,
    reference: tuple[np.ndarray | None, np.ndarray],
    *,
    precise: bool = False,
    latency: tuple[int, int] = (20, 5),
) -> TrialMeasurement:
    """``path`` on float32[N, 3, h, w] ``inputs`` against ``reference`` = (int64[N] labels or None, the fp32
    model's float32[N, C] logits), its p50 batch-1 latency on this machine (``latency`` = (runs, warm-up)),
    and its op counts after onnxruntime's optimisation."""
    labels, fp32_logits = reference
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="edgecls-trial-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        sess = _session(path, precise, None if precise else optimized)
        name = sess.get_inputs()[0].name
        logits = np.concatenate(
            [sess.run(None, {name: inputs[i : i + BATCH]})[0] for i in range(0, len(inputs), BATCH)]
        ).astype(np.float32)
        if precise:  # speed and fusions are those of the ordinary kernels
            sess = _session(path, False, optimized)
        p50 = session_latency_ms(sess, inputs[:1], *latency)["p50_ms"]
        fusion = count_fused_ops(onnx.load(str(optimized), load_external_data=False))
    return TrialMeasurement(score_logits(logits, labels, fp32_logits), p50, fusion)
