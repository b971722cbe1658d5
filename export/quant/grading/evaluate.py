"""Measuring a quantized model against its float original: accuracy, agreement, logit error, latency, size."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgecls.export.parity import onnx_logits
from edgecls.runtime.inference.scores import top1_accuracy, top1_agreement


def relative_error(q: np.ndarray, f: np.ndarray) -> float:
    """Mean over images of ||q - f||^2 / ||f||^2 for float32[N, C] logits (a smooth sensitivity signal)."""
    num = np.sum((q.astype(np.float64) - f) ** 2, axis=1)
    den = np.maximum(np.sum(f.astype(np.float64) ** 2, axis=1), 1e-12)
    return float(np.mean(num / den))


@dataclass
class Accuracy:
    """One variant on the validation images; ``score`` is what the budget compares (top-1 or agreement)."""

    top1: float | None  # None when the images are unlabelled
    agreement: float  # with fp32, on every image
    relative_error: float  # vs fp32 logits
    decisive_agreement: float | None = None  # with fp32, on the images fp32 decides (decisive.py); None: not asked

    @property
    def score(self) -> float:
        """What the budget compares: top-1 when labelled, else agreement (on decisive images when asked)."""
        if self.top1 is not None:
            return self.top1
        return self.agreement if self.decisive_agreement is None else self.decisive_agreement

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scored_outcomes(
    logits: np.ndarray, labels: np.ndarray | None, fp32_logits: np.ndarray, decisive: np.ndarray | None = None
) -> np.ndarray:
    """bool[M], one per image the score averages: top-1 right (labelled, M = N), else fp32's answer kept (on the
    ``decisive`` images when given, M = their count; else M = N). ``score_logits(...).score`` is its mean."""
    top = logits.argmax(axis=1)
    if labels is not None:
        return top == labels
    same = top == fp32_logits.argmax(axis=1)
    return same if decisive is None else same[decisive]


def graded_score(accuracy: dict[str, Any]) -> float | None:
    """``Accuracy.score`` of an ``Accuracy.to_dict()`` as reports keep it: what the verdict judged."""
    for key in ("top1", "decisive_agreement", "agreement"):
        if accuracy.get(key) is not None:
            return float(accuracy[key])
    return None


#: onnxruntime's kOrtSessionOptionsAvx2PrecisionMode: exact u8u8 kernels instead of saturating u8s8 on x86
#: without VNNI (onnxruntime_session_options_config_keys.h). Stands in for a VNNI or ARM CPU's accuracy.
PRECISE_KERNELS_KEY = "session.x64quantprecision"


def int8_session_options(precise: bool) -> Any:
    """The runtime's session options; ``precise``: onnxruntime's exact int8 kernels (the target is not this CPU)."""
    from edgecls.runtime.providers.session import session_options

    so = session_options()
    if precise:
        so.add_session_config_entry(PRECISE_KERNELS_KEY, "1")
    return so


def int8_logits(path: str | os.PathLike[str], inputs: np.ndarray, precise: bool = False) -> np.ndarray:
    """float32[N, 3, h, w] -> float32[N, C]; ``precise`` runs onnxruntime's exact int8 kernels."""
    if not precise:
        return onnx_logits(path, inputs)
    import onnxruntime as ort

    from edgecls.runtime.inference.batched_inference import session_outputs

    sess = ort.InferenceSession(str(path), sess_options=int8_session_options(True), providers=["CPUExecutionProvider"])
    return session_outputs(sess, inputs)


def measure_accuracy(
    path: str | os.PathLike[str],
    inputs: np.ndarray,
    labels: np.ndarray | None,
    fp32_logits: np.ndarray,
    precise: bool = False,
    decisive: np.ndarray | None = None,
) -> tuple[Accuracy, np.ndarray]:
    """Run ``path`` on float32[N, 3, h, w] inputs -> (its Accuracy, its float32[N, C] logits)."""
    logits = int8_logits(path, inputs, precise)
    return score_logits(logits, labels, fp32_logits, decisive), logits


def score_logits(
    logits: np.ndarray, labels: np.ndarray | None, fp32_logits: np.ndarray, decisive: np.ndarray | None = None
) -> Accuracy:
    """float32[N, C] logits of a variant against int64[N] labels (or None) and the fp32 model's logits;
    ``decisive`` (bool[N], unlabelled images only) adds the agreement on the images fp32 decides."""
    on_decisive = None
    if labels is None and decisive is not None:  # no decisive image: nothing changed where fp32 has an answer
        on_decisive = float(scored_outcomes(logits, None, fp32_logits, decisive).mean()) if decisive.any() else 1.0
    return Accuracy(
        None if labels is None else top1_accuracy(logits, labels),
        top1_agreement(logits, fp32_logits),
        relative_error(logits, fp32_logits),
        on_decisive,
    )


def latency_ms(
    path: str | os.PathLike[str],
    input_shape: tuple[int, int, int],
    runs: int = 50,
    warmup: int = 10,
    threads: int | None = None,
) -> dict[str, float]:
    """Batch-1 latency of one session on this machine: p50/p90 in milliseconds, warm-up excluded (the bench's
    harness, :mod:`edgecls.runtime.inference.latency`)."""
    from edgecls.runtime.providers.session import create_session

    sess, _ = create_session(path, provider="cpu", threads=threads)
    x = np.random.default_rng(0).standard_normal((1, *input_shape)).astype(np.float32)
    return session_latency_ms(sess, x, runs, warmup)


def session_latency_ms(sess: Any, x: np.ndarray, runs: int = 50, warmup: int = 10) -> dict[str, float]:
    """p50/p90 milliseconds of ``sess.run`` on the float32[1, 3, h, w] input ``x``, warm-up excluded (the bench's
    timing loop, runtime/inference/latency.py)."""
    from edgecls.runtime.inference.latency import measure_latency

    name = sess.get_inputs()[0].name
    stats, _, _ = measure_latency(lambda: sess.run(None, {name: x}), runs=runs, warmup=warmup)
    return {"p50_ms": stats.p50_ms, "p90_ms": stats.p90_ms, "runs": stats.runs}
