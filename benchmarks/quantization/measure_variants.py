"""Grading and timing the study's int8 variants against their fp32 model.

Accuracy (``grade``) is load-independent and runs in the quantize phase; latency (``interleaved_latency``,
``measure_latency``) is the timing phase, run under the CPU lock, every variant once per round so a change of
load hits all of them alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from study_env import THREADS, log

from edgecls.export.parity import onnx_logits
from edgecls.export.quant.grading.decisive import onnx_decisive_images
from edgecls.export.quant.grading.evaluate import int8_logits, latency_ms, relative_error, session_latency_ms
from edgecls.export.quant.grading.fused_graph import fusion_counts
from edgecls.export.quant.grading.image_sets import ImageList
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.inference.batched_inference import session_outputs
from edgecls.runtime.inference.scores import top1_accuracy, top1_agreement


@dataclass(frozen=True)
class GradedCrops:
    """The test crops as every row is graded on them, computed once: float32[N, 3, h, w] inputs, fp32's
    float32[N, C] logits on onnxruntime, and bool[N] the crops fp32 decides (``decisive.py``)."""

    inputs: np.ndarray
    fp32_logits: np.ndarray
    decisive: np.ndarray


def graded_crops(test: ImageList, contract: ModelContract, fp32: Path) -> GradedCrops:
    x = test.inputs(contract)
    ref = onnx_logits(fp32, x)
    return GradedCrops(x, ref, onnx_decisive_images(fp32, test.images, ref, contract).mask)


def grade(
    paths: dict[str, Path],
    precise: set[str],
    test: ImageList,
    contract: ModelContract,
    fp32: Path,
    reference: GradedCrops | None = None,
) -> dict[str, dict[str, Any]]:
    """Every variant on the test crops: agreement with fp32 (on every crop, and on the crops fp32 decides, for
    labelled crops too), top-1 when labelled, logit error, fused graph. A ``.xml`` file (OpenVINO IR, a peer's)
    runs on OpenVINO at f32 (``logits_of``). ``reference``: ``test_reference`` when the caller already has it."""
    ref = reference or graded_crops(test, contract, fp32)
    x, decisive = ref.inputs, ref.decisive
    rows = {}
    for label, path in paths.items():
        logits = ref.fp32_logits if label == "fp32" else logits_of(path, x, precise=label in precise)
        row: dict[str, Any] = {
            "agreement": top1_agreement(logits, ref.fp32_logits),
            "decisive_agreement": top1_agreement(logits[decisive], ref.fp32_logits[decisive]),
            "decisive_images": int(decisive.sum()),
            "images": len(test),
            "relative_error": relative_error(logits, ref.fp32_logits),
            "size_bytes": sum(f.stat().st_size for f in (path, path.with_suffix(".bin")) if f.is_file()),
            "precise_kernels": label in precise,
        }
        if test.labels is not None:
            row["top1"] = top1_accuracy(logits, test.labels)
        if label != "fp32" and path.suffix == ".onnx":
            row["fusion"] = fusion_counts(path)
        rows[label] = row
    return rows


def openvino_f32_session(path: Path, threads: int = THREADS) -> Any:
    """An ONNX file or an OpenVINO IR (``.xml``) compiled by OpenVINO's CPU plugin at f32 inference precision,
    read back (this CPU's bf16 default would add its own error), compiled-model cache off (files are per run)."""
    from edgecls.runtime.providers.openvino import OpenVINOSession

    session = OpenVINOSession(path, threads, {"CACHE_DIR": ""}, precision="f32")
    if session.precision != "f32":
        raise RuntimeError(f"{path}: OpenVINO compiled it in {session.precision}, not f32")
    return session


def logits_of(path: Path, x: np.ndarray, precise: bool = False) -> np.ndarray:
    """float32[N, 3, h, w] -> float32[N, C] of an ONNX file on onnxruntime (``precise``: its exact int8 kernels) or
    of a peer's OpenVINO IR (``.xml``) on OpenVINO in f32."""
    if path.suffix == ".xml":
        return session_outputs(openvino_f32_session(path), x)
    return int8_logits(path, x, precise=precise)


def file_latency_ms(path: Path, size: tuple[int, int], runs: int) -> float:
    """Batch-1 p50 (ms) of one file, 10 warm-up calls: an ONNX file on onnxruntime, an ``.xml`` (OpenVINO IR) on
    OpenVINO in f32, both with ``THREADS`` threads."""
    if path.suffix != ".xml":
        return latency_ms(path, (3, *size), runs, 10, threads=THREADS)["p50_ms"]
    x = np.random.default_rng(0).standard_normal((1, 3, *size)).astype(np.float32)
    return session_latency_ms(openvino_f32_session(path), x, runs, 10)["p50_ms"]


def interleaved_latency(paths: dict[str, Path], size: tuple[int, int], rounds: int, runs: int) -> dict[str, Any]:
    """Round by round, every variant once: the median of the rounds' p50 and their range (ms)."""
    p50s: dict[str, list[float]] = {k: [] for k in paths}
    for r in range(rounds):
        for label, path in paths.items():
            p50s[label].append(file_latency_ms(path, size, runs))
        log(f"  latency round {r + 1}/{rounds}: " + ", ".join(f"{k[:24]} {v[-1]:.2f}" for k, v in p50s.items()))
    return {
        k: {"p50_ms": float(np.median(v)), "min_ms": float(np.min(v)), "max_ms": float(np.max(v)), "rounds": v}
        for k, v in p50s.items()
    }


def measure_latency(result: dict[str, Any], name: str, rounds: int, runs: int) -> None:
    """The timing phase (run it under the CPU lock): every variant file, interleaved round by round."""
    log(f"[{name}] latency, {rounds} rounds x {runs} runs, interleaved (load {os.getloadavg()})")
    paths = {k: Path(v) for k, v in result["speed_paths"].items()}
    result["latency_loadavg_start"] = os.getloadavg()
    result["latency"] = interleaved_latency(paths, tuple(result["input_size"]), rounds, runs)
    result["latency_loadavg_end"] = os.getloadavg()
