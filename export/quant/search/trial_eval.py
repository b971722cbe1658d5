"""One int8 trial measured with one onnxruntime session: accuracy, batch-1 latency and the fused graph.

Measuring them separately (``evaluate.measure_accuracy``, ``evaluate.latency_ms``,
``fused_graph.fusion_counts``) builds three sessions of the same file, and building a session of a QDQ graph
(its fusions and layout transforms) costs about as much as running the search images through it. Here the
session that computes the accuracy also writes its optimised graph (``optimized_model_filepath``) and is then
timed. Only when accuracy is graded with onnxruntime's exact kernels (a target that is not this CPU) does
speed need a second, ordinary session. The images go through
:mod:`edgecls.runtime.inference.batched_inference`, so a model with a fixed batch dimension gets calls of exactly
that size.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgecls.export.quant.grading.conv_counts import ConvCounts, conv_counts
from edgecls.export.quant.grading.evaluate import (
    Accuracy,
    int8_session_options,
    score_logits,
    scored_outcomes,
    session_latency_ms,
)
from edgecls.export.quant.grading.fused_graph import count_fused_ops
from edgecls.runtime.inference.batched_inference import fixed_batch_of, session_outputs

BATCH = 64


@dataclass
class TrialMeasurement:
    accuracy: Accuracy
    latency_p50_ms: float
    fusion: dict[str, Any]  # fused_graph.count_fused_ops
    convs: ConvCounts  # the same counts with why: the file's float convs vs this CPU's fusions
    outcomes: np.ndarray  # bool[M]: per image, what accuracy.score averages (evaluate.scored_outcomes)


def _session(path: Path, precise: bool, optimized: Path | None) -> Any:
    import onnxruntime as ort

    so = int8_session_options(precise)
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
    decisive: np.ndarray | None = None,
) -> TrialMeasurement:
    """``path`` on float32[N, 3, h, w] ``inputs`` against ``reference`` = (int64[N] labels or None, the fp32
    model's float32[N, C] logits), its p50 latency of one call on this machine (batch 1, or the model's fixed
    batch; ``latency`` = (runs, warm-up)), and its op counts after onnxruntime's optimisation. ``decisive``:
    bool[N], the unlabelled images fp32 decides (agreement is then scored on them, ``decisive.py``)."""
    labels, fp32_logits = reference
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="edgecls-trial-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        sess = _session(path, precise, None if precise else optimized)
        logits = session_outputs(sess, inputs, BATCH)
        if precise:  # speed and fusions are those of the ordinary kernels
            sess = _session(path, False, optimized)
        # float32[b, 3, h, w]: the smallest call the model takes (b = 1, or its fixed batch), first image repeated
        one_call = np.repeat(inputs[:1], fixed_batch_of(sess.get_inputs()[0].shape) or 1, axis=0)
        p50 = session_latency_ms(sess, one_call, *latency)["p50_ms"]
        graph = onnx.load(str(optimized), load_external_data=False)
        fusion, convs = count_fused_ops(graph), conv_counts(path, graph)
    outcomes = scored_outcomes(logits, labels, fp32_logits, decisive)
    return TrialMeasurement(score_logits(logits, labels, fp32_logits, decisive), p50, fusion, convs, outcomes)
