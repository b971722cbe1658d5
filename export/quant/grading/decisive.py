"""Which images the fp32 model decides: its top-1 answer survives changes to the pixels that no one can see.

Agreement with fp32 grades an int8 file by how often it gives fp32's answer. On an image where fp32's own answer
flips when pixels move by one grey level, that answer is decided by noise: any camera's sensor noise is larger,
and no int8 file can be asked to reproduce it. On third-party ImageNet EfficientNet-Lite0 and 200 photo crops,
fp32 kept its answer on only 81-84% of them under such noise and 86% after a JPEG re-encode at quality 95; its
post-training int8 agreed with fp32 on all 136 crops whose answer survived every change, and on 75% of the rest
(benchmarks/quantization/AGREEMENT-FLOOR_*). Graded on all crops, that file "missed" a 1-point budget by 7
points, every one of them on crops fp32 cannot decide itself.

So an unlabelled image is *decisive* when fp32's top-1 is unchanged by each of ``NOISE_DRAWS`` draws of uniform
noise of at most one grey level per pixel (rounded back to uint8) and by a JPEG re-encode at ``JPEG_QUALITY``.
Agreement is graded on decisive images (``--agreement-on decisive``, the default); the agreement on every image
is reported beside it, and ``--agreement-on all`` grades on every image as before. Labelled images are graded by
top-1 against their labels, which needs none of this.

Cost: ``NOISE_DRAWS + 1`` more fp32 passes over the validation images (about 10 s for 320 crops of a 4.7M-parameter
model at 224 px on 2 cores).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.inference.preprocess import preprocess_batch

#: Draws of +-1 grey level noise; with the re-encode, 5 changes (each flips a further 1-3% of Lite0's crops).
NOISE_DRAWS = 4
JPEG_QUALITY = 95
SEED = 0
AGREEMENT_ON = ("decisive", "all")
DESCRIPTION = (
    f"fp32's answer survives +-1 grey level of noise ({NOISE_DRAWS} draws) and a JPEG q{JPEG_QUALITY} re-encode"
)


@dataclass(frozen=True)
class DecisiveImages:
    """Which of N images fp32 decides (bool[N]) and what it took to find out."""

    mask: np.ndarray  # bool[N]

    @property
    def count(self) -> int:
        return int(self.mask.sum())

    def describe(self) -> str:
        return f"{self.count} of {len(self.mask)} images are decisive ({DESCRIPTION})"


def invisible_changes(image: np.ndarray, rng: np.random.Generator, draws: int = NOISE_DRAWS) -> list[np.ndarray]:
    """``draws`` copies of uint8[H, W, 3] ``image`` with each pixel moved by at most one grey level, and its JPEG
    re-encode: the changes under which fp32's answer has to survive."""
    out = [np.clip(image + rng.uniform(-1.0, 1.0, image.shape), 0, 255).round().astype(np.uint8) for _ in range(draws)]
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if ok:
        out.append(cv2.imdecode(encoded, cv2.IMREAD_COLOR))
    return out


def decisive_images(
    fp32_logits_of: Callable[[np.ndarray], np.ndarray],
    images: list[np.ndarray],
    fp32_logits: np.ndarray,
    contract: ModelContract,
    draws: int = NOISE_DRAWS,
    seed: int = SEED,
) -> DecisiveImages:
    """Which of the uint8[H, W, 3] ``images`` fp32 decides, given their fp32 float32[N, C] ``fp32_logits`` and
    ``fp32_logits_of`` (float32[M, 3, h, w] inputs -> float32[M, C] logits of the same fp32 model)."""
    answer = fp32_logits.argmax(axis=1)
    rng = np.random.default_rng(seed)
    changed = [invisible_changes(im, rng, draws) for im in images]  # N lists of (draws + 1) images
    mask = np.ones(len(images), dtype=bool)
    for k in range(draws + 1):
        idx = [i for i, views in enumerate(changed) if k < len(views)]
        if not idx:
            continue
        logits = fp32_logits_of(preprocess_batch([changed[i][k] for i in idx], contract))
        mask[idx] &= logits.argmax(axis=1) == answer[idx]
    return DecisiveImages(mask)


def onnx_decisive_images(
    fp32_path: str | os.PathLike[str], images: list[np.ndarray], fp32_logits: np.ndarray, contract: ModelContract
) -> DecisiveImages:
    """``decisive_images`` with the fp32 ONNX file run on one onnxruntime CPU session (built once, not per change)."""
    from edgecls.runtime.inference.batched_inference import session_outputs
    from edgecls.runtime.providers.session import create_session

    session, _ = create_session(fp32_path, provider="cpu")
    return decisive_images(lambda x: session_outputs(session, x), images, fp32_logits, contract)


def decisive_parts(
    fp32_path: str | os.PathLike[str],
    parts: tuple[list[np.ndarray], list[np.ndarray]],
    fp32_logits: tuple[np.ndarray, np.ndarray],
    contract: ModelContract,
    agreement_on: str,
    log: Callable[[str], None],
) -> tuple[DecisiveImages | None, DecisiveImages | None]:
    """The unlabelled search and held-out images fp32 decides (None, None for ``agreement_on="all"``), said in
    one line."""
    if agreement_on not in AGREEMENT_ON:
        raise ValueError(f"agreement_on must be one of {', '.join(AGREEMENT_ON)}, not {agreement_on!r}")
    if agreement_on == "all":
        return None, None
    search, holdout = (
        onnx_decisive_images(fp32_path, images, ref, contract) for images, ref in zip(parts, fp32_logits, strict=True)
    )
    log(
        f"int8 agreement is graded on the images fp32 decides ({DESCRIPTION}): {search.count} of {len(search.mask)} "
        f"search and {holdout.count} of {len(holdout.mask)} held-out images; --agreement-on all grades every image"
    )
    return search, holdout
