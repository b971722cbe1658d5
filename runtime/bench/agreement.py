"""Is a fast row also right? Every benchmarked configuration against onnxruntime CPU fp32 on the same inputs.

The parent (:func:`edgecls.runtime.bench.sweep.run_benchmark`, through :func:`family_comparisons`) computes,
once per model family, the reference outputs of the family's fp32 model on onnxruntime's CPU provider and writes
them (with what the inputs were) to an ``.npz``; each measuring process runs its own engine on the same inputs
and reports top-1 agreement over n images and the largest absolute output difference (``BenchRow.agreement``,
``agreement_images``, ``max_abs_diff``). A provider that is fast but wrong shows it in its row.

Inputs: with ``--data``, EVERY image of the folder through the runtime's own preprocessing (what the model sees
in ``edgecls run``), decoded :data:`COMPARE_CHUNK` at a time so memory does not grow with the folder. Why all:
OpenVINO's bf16 mode agreed on 100% of the first 32 photo crops and on 95.33% of 300 (issue #22), so a sample
can call a wrong engine correct. Without images: seeded standard-normal tensors, which only measure max |d| of
the fp32 file itself on another engine; no agreement figure is made from them (an int8 file's top-1 on noise
says nothing about its accuracy).

Shapes: inputs ``float32[M, 3, h, w]``; reference ``float32[M, C]``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecls.runtime.bench.rows import BenchResult, BenchTarget
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.inference.batched_inference import Infer, fixed_batch_of, infer_in_batches
from edgecls.runtime.inference.scores import top1_agreement

#: Images decoded, preprocessed and compared per step (``float32[32, 3, h, w]`` in memory at a time).
COMPARE_CHUNK = 32
#: Noise tensors compared without images (max |d| of the same file on another engine only).
COMPARE_NOISE = 16


@dataclass(frozen=True)
class Agreement:
    agreement: float | None  # top-1 agreement with the reference over `images` real images, 0..1; None on noise
    max_abs_diff: float | None  # max |output - reference output|; None when it compares different files on noise
    inputs: int
    images: int | None  # n real images (None: noise tensors)


def decodable(images: Sequence[tuple[str, str | None]], contract: ModelContract) -> list[str]:
    """The paths of ``images`` that decode (a broken file is left out of the comparison, not an error)."""
    from edgecls.runtime.errors import ImageDecodeError
    from edgecls.runtime.images.decode import decode_image
    from edgecls.runtime.inference.preprocess import decode_floor

    floor, out = decode_floor(contract), []
    for path, _ in images:
        try:
            decode_image(path, floor)
        except ImageDecodeError:
            continue
        out.append(path)
    return out


def image_chunks(paths: Sequence[str], contract: ModelContract, chunk: int = COMPARE_CHUNK) -> Iterator[np.ndarray]:
    """``float32[<=chunk, 3, h, w]`` batches of ``paths`` through the contract's decode and preprocessing."""
    from edgecls.runtime.images.decode import decode_image
    from edgecls.runtime.inference.preprocess import decode_floor, preprocess_batch

    floor = decode_floor(contract)
    for i in range(0, len(paths), chunk):
        yield preprocess_batch([decode_image(p, floor) for p in paths[i : i + chunk]], contract)


def noise_inputs(contract: ModelContract | None, input_hw: tuple[int, int] | None) -> np.ndarray | None:
    """``float32[COMPARE_NOISE, 3, h, w]`` seeded noise, or None when the input size is unknown."""
    hw = contract.input_size if contract is not None else input_hw
    if hw is None:
        return None
    return np.random.default_rng(0).standard_normal((COMPARE_NOISE, 3, *hw)).astype(np.float32)


def _outputs(infer: Infer, chunks: Iterator[np.ndarray], batch: int, pad: bool, dtype: str) -> np.ndarray:
    return np.concatenate([infer_in_batches(infer, x, batch, pad=pad, dtype=dtype) for x in chunks])


def reference_outputs(target: BenchTarget, chunks: Iterator[np.ndarray]) -> np.ndarray:
    """The family's fp32 model on onnxruntime's CPU provider (1 thread: the reference need not be fast)."""
    from edgecls.runtime.bench.onnxruntime_loader import load_onnxruntime

    runner = load_onnxruntime(target.model, "cpu", 1)
    fixed = fixed_batch_of(runner.input_shape)  # else one call per chunk (at most COMPARE_CHUNK inputs)
    return _outputs(runner.infer, chunks, fixed or COMPARE_CHUNK, fixed is not None, runner.input_dtype)


def write_comparison(
    path: str | os.PathLike[str], reference: np.ndarray, model: str, paths: Sequence[str] = (),
    noise: np.ndarray | None = None,
) -> Path:
    """The reference outputs with what produced them: image ``paths`` (decoded again by each measuring process)
    or the ``noise`` tensors themselves; ``model`` is the reference file."""
    np.savez(
        path, reference=reference, model=np.array(model), paths=np.array(list(paths), dtype=str),
        noise=noise if noise is not None else np.zeros((0,), np.float32),
    )
    return Path(path)


def compare(
    infer: Infer, comparison: str | os.PathLike[str], batch: int, dtype: str, model: str,
    contract: ModelContract | None,
) -> tuple[Agreement, str]:
    """Run ``infer`` (the row's engine on file ``model``) on the stored inputs in calls of exactly ``batch``
    and compare with the stored reference outputs."""
    with np.load(comparison) as data:
        ref, paths, noise, ref_model = data["reference"], list(data["paths"]), data["noise"], str(data["model"])
    if paths and contract is not None:
        got = _outputs(infer, image_chunks(paths, contract), batch, True, dtype)
        if got.shape != ref.shape:
            return Agreement(0.0, float("inf"), len(paths), len(paths)), f"{len(paths)} images"
        return (
            Agreement(top1_agreement(got, ref), float(np.abs(got - ref).max()), len(paths), len(paths)),
            f"{len(paths)} images",
        )
    what = f"{len(noise)} noise tensors"
    if not len(noise) or os.path.abspath(model) != os.path.abspath(ref_model):
        return Agreement(None, None, len(noise), None), what  # another file on noise: nothing worth a number
    got = infer_in_batches(infer, noise, batch, pad=True, dtype=dtype)
    diff = float("inf") if got.shape != ref.shape else float(np.abs(got - ref).max())
    return Agreement(None, diff, len(noise), None), what


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
        contract = t.contract
        paths = decodable(images, contract) if images and contract is not None else []
        noise = None if paths else noise_inputs(contract, None)
        if not paths and noise is None:  # a foreign model without a contract: its input size is unknown here
            continue
        try:
            chunks = image_chunks(paths, contract) if paths and contract is not None else iter([noise])
            ref = reference_outputs(t, chunks)
        except Exception:  # noqa: BLE001 - the fp32 row itself will carry the error
            continue
        out[t.family] = str(write_comparison(tmp / f"family_{len(out)}.npz", ref, t.model, paths, noise))
    return out


def agreement_inputs_line(result: BenchResult) -> str | None:
    """Why `agree %` is empty when no images were given: agreement is only ever measured on real images."""
    kinds = {r.agreement_inputs for r in result.rows if r.agreement_inputs}
    noise = sorted(k for k in kinds if "noise" in k)
    if not noise:
        return None
    return (
        "no images: `agree %` needs real images (pass --data DIR; a run's export uses the run's test split by "
        f"itself); `max |d|` of the fp32 file on other engines was measured on {', '.join(noise)}."
    )
