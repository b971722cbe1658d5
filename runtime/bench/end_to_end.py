"""End-to-end timing: every image through decode -> preprocess -> inference -> postprocess, each stage timed.

Runs in the measuring process after the latency loop when the bench has images (``--data`` or ``--e2e``):
one pass over the images in batches of the configuration's size, with the runtime's own decode
(reduced-scale JPEG decode, as in ``edgecls run``) and ``preprocess_batch``. Top-1 accuracy is counted when an
image's class folder is one of the model's labels.
"""

from __future__ import annotations

import time

from edgecls.runtime.bench.rows import LoadedRunner, StageTimes
from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.inference.batched_inference import fixed_batch_of, infer_in_batches
from edgecls.runtime.inference.scores import top1_with_score


def end_to_end(
    runner: LoadedRunner,
    contract: ModelContract,
    images: list[tuple[str, str | None]],
    batch: int,
    synthetic: bool,
) -> tuple[StageTimes, float | None, int | None, list[str]]:
    """One pass over ``(path, class or None)`` images: (per-stage means per image, top-1 accuracy or None,
    images scored or None, notes for the row)."""
    from edgecls.runtime.errors import ImageDecodeError
    from edgecls.runtime.images.decode import decode_image
    from edgecls.runtime.inference.preprocess import decode_floor, preprocess_batch

    notes: list[str] = []
    fixed = fixed_batch_of(runner.input_shape)
    label_index = {name: i for i, name in enumerate(contract.labels)}
    floor = decode_floor(contract)  # large JPEGs decode at reduced scale, as in `edgecls run`
    t_dec = t_pre = t_inf = t_post = 0.0
    done = errors = correct = scored = 0
    unknown: set[str] = set()
    wall0 = time.perf_counter()
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        t0 = time.perf_counter()
        decoded, labels = [], []
        for path, cls in chunk:
            try:
                decoded.append(decode_image(path, floor))
                labels.append(cls)
            except ImageDecodeError:
                errors += 1
        t1 = time.perf_counter()
        if not decoded:
            t_dec += t1 - t0
            continue
        x = preprocess_batch(decoded, contract)
        n = len(decoded)
        t2 = time.perf_counter()
        # One call: a fixed-batch model gets a full (padded) batch, the padded rows are dropped.
        out = infer_in_batches(runner.infer, x, fixed or n, pad=fixed is not None, dtype=runner.input_dtype)
        t3 = time.perf_counter()
        idx, _ = top1_with_score(out, contract.output_kind)
        t4 = time.perf_counter()
        t_dec, t_pre, t_inf, t_post = t_dec + t1 - t0, t_pre + t2 - t1, t_inf + t3 - t2, t_post + t4 - t3
        done += n
        for pred, cls in zip(idx, labels, strict=True):
            if cls is None:
                continue
            if cls not in label_index:
                unknown.add(cls)
                continue
            scored += 1
            correct += int(pred == label_index[cls])
    wall = time.perf_counter() - wall0
    per = 1000.0 / max(done, 1)
    stages = StageTimes(
        images=done,
        decode_ms=t_dec * per,
        preprocess_ms=t_pre * per,
        infer_ms=t_inf * per,
        postprocess_ms=t_post * per,
        total_ms=wall * per,
        images_per_s=done / wall if wall else 0.0,
        decode_errors=errors,
        synthetic=synthetic,
    )
    if errors:
        notes.append(f"{errors} image(s) could not be decoded and were skipped")
    if unknown:
        notes.append(f"class folder(s) not among the model's labels, not scored: {', '.join(sorted(unknown))}")
    accuracy = correct / scored if scored else None
    return stages, accuracy, (scored or None), notes
