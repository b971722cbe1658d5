"""Is a fast row also right? Every benchmarked configuration against onnxruntime CPU fp32 on the same inputs.

The parent (:func:`edgecls.runtime.bench.sweep.run_benchmark`, through :func:`family_comparisons`) builds,
once per model family, the comparison inputs and the reference outputs of the family's fp32 model on
onnxruntime's CPU provider, and writes them to an ``.npz``; each measuring process runs its own engine on the
same inputs and reports top-1 agreement and the largest absolute output difference (``BenchRow.agreement`` /
``max_abs_diff``). A provider that is fast but wrong shows it in its row.

Inputs: with ``--data``, the first images of the folder through the runtime's own preprocessing (what the model
sees in ``edgecls run``); otherwise seeded standard-normal tensors (outputs still must agree; agreement on noise
says less about accuracy than on real images, and the report says which it was).

Shapes: inputs ``float32[M, 3, h, w]``; reference ``float32[M, C]``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecls.runtime.batched_inference import Infer, fixed_batch_of, infer_in_batches
from edgecls.runtime.bench.rows import BenchResult, BenchTarget
from edgecls.runtime.contract import ModelContract
from edgecls.runtime.scores import top1_agreement

#: How many inputs each configuration is compared on (the images of a small --data folder, or noise tensors).
COMPARE_IMAGES = 32
COMPARE_NOISE = 16


@dataclass(frozen=True)
class Agreement:
    agreement: float  # top-1 agreement with the reference, 0..1
    max_abs_diff: float  # max |output - reference output| over all inputs and classes
    inputs: int


def comparison_inputs(
    contract: ModelContract | None,
    input_hw: tuple[int, int] | None,
    images: Sequence[tuple[str, str | None]] | None,
) -> tuple[np.ndarray, str] | None:
    """(``float32[M, 3, h, w]``, what they are) for a family, or None when the input size is unknown."""
    if images and contract is not None:
        from edgecls.runtime.decode import decode_image
        from edgecls.runtime.errors import ImageDecodeError
        from edgecls.runtime.preprocess import decode_floor, preprocess_batch

        decoded = []
        floor = decode_floor(contract)
        for path, _ in images:
            try:
                decoded.append(decode_image(path, floor))
            except ImageDecodeError:
                continue
            if len(decoded) == COMPARE_IMAGES:
                break
        if decoded:
            return preprocess_batch(decoded, contract), f"{len(decoded)} images"
    hw = contract.input_size if contract is not None else input_hw
    if hw is None:
        return None
    rng = np.random.default_rng(0)
    return rng.standard_normal((COMPARE_NOISE, 3, *hw)).astype(np.float32), f"{COMPARE_NOISE} noise tensors"


def reference_outputs(target: BenchTarget, x: np.ndarray) -> np.ndarray:
    """The family's fp32 model on onnxruntime's CPU provider (1 thread: the reference need not be fast)."""
    from edgecls.runtime.bench.onnxruntime_loader import load_onnxruntime

    runner = load_onnxruntime(target.model, "cpu", 1)
    fixed = fixed_batch_of(runner.input_shape)
    return infer_in_batches(runner.infer, x, fixed or len(x), pad=fixed is not None, dtype=runner.input_dtype)


def write_comparison(path: str | os.PathLike[str], x: np.ndarray, reference: np.ndarray, what: str) -> Path:
    np.savez(path, inputs=x, reference=reference, what=np.array(what))
    return Path(path)


def compare(infer: Infer, comparison: str | os.PathLike[str], batch: int, dtype: str) -> tuple[Agreement, str]:
    """Run ``infer`` on the stored inputs in calls of exactly ``batch`` and compare with the stored outputs."""
    with np.load(comparison) as data:
        x, ref, what = data["inputs"], data["reference"], str(data["what"])
    got = infer_in_batches(infer, x, batch, pad=True, dtype=dtype)
    if got.shape != ref.shape:
        return Agreement(0.0, float("inf"), len(x)), what
    return Agreement(top1_agreement(got, ref), float(np.abs(got - ref).max()), len(x)), what


def family_comparisons(
    targets: Sequence[BenchTarget], images: Sequence[tuple[str, str | None]] | None, stack: contextlib.ExitStack
) -> dict[str, str]:
    """family -> ``.npz`` of its comparison inputs and its fp32 onnxruntime CPU outputs (in a temporary folder
    that ``stack`` removes); families without an fp32 file or a known input size are left out."""
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="edgecls-bench-compare-")))
    out: dict[str, str] = {}
    for t in targets:
        if t.is_baseline or t.load_error or t.variant != "fp32" or t.family in out:
            continue
        made = comparison_inputs(t.contract, None, images)
        if made is None:  # a foreign model without a contract: its input size is unknown here
            continue
        x, what = made
        try:
            ref = reference_outputs(t, x)
        except Exception:  # noqa: BLE001 - the fp32 row itself will carry the error
            continue
        out[t.family] = str(write_comparison(tmp / f"family_{len(out)}.npz", x, ref, what))
    return out


def agreement_inputs_line(result: BenchResult) -> str | None:
    """A warning when `agree %` was measured on noise tensors (no --data): quantized variants meet inputs their
    calibration never saw and legitimately disagree with fp32 there, so the column then says nothing about their
    accuracy; provider-vs-provider rows on the same file still must agree."""
    kinds = {r.agreement_inputs for r in result.rows if r.agreement_inputs}
    noise = sorted(k for k in kinds if "noise" in k)
    if not noise:
        return None
    return (
        f"agree % / max |d| were measured on {', '.join(noise)}, not images: an int8/fp16 file's agreement with fp32 "
        "on noise says nothing about its accuracy (pass --data DIR with real images); the same file on another "
        "provider must still agree."
    )
