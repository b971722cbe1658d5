"""How much of int8's disagreement with fp32 is fp32's own: its answers under changes no one can see.

On a folder of crops, fp32's top-1 is computed again after changes invisible to a person: uniform noise of at
most one grey level per pixel (``--draws`` draws, rounded back to uint8) and a JPEG re-encode at quality 95.
How often fp32 agrees with itself under those changes is the floor under any "agreement with fp32" figure on these
crops: a crop whose answer flips when one grey level moves is decided by noise, and an int8 file cannot be asked
to reproduce noise. Crops whose fp32 answer survives every change are *stable*; each int8 file's agreement with
fp32 is reported on all crops, on the stable ones and on the rest, beside the top-1/top-2 logit margins.

    python benchmarks/quantization/run_distill_bench.py --work W ...      # makes W's models and crops
    python benchmarks/quantization/agreement_floor.py --fp32 W/effnet-lite0/model.onnx --crops W/distill-test \\
        --int8 default-budget=W/distill-edgecls/model.int8.onnx --int8 all-int8=W/distill-all-int8/model.int8.onnx

Writes ``AGREEMENT-FLOOR_<cpu>-<isa>_ort<version>_<date>[_suffix].{md,json}`` beside this script (``--out``).
Answers only, no timings: valid under load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edgecls.runtime.bench.env import collect_environment, cpu_slug, isa_slug
from edgecls.runtime.images.decode import decode_image
from edgecls.runtime.images.files import walk_images
from edgecls.runtime.inference.batched_inference import session_outputs
from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.inference.preprocess import preprocess_batch

HERE = Path(__file__).resolve().parent


@dataclass
class FileAgreement:
    name: str
    path: str
    all_crops: float  # top-1 agreement with fp32, %
    stable_crops: float | None
    unstable_crops: float | None


@dataclass
class Floor:
    crops: int
    draws: int
    noise_agreement: list[float]  # fp32 vs fp32 with +-1 grey level noise, % per draw
    jpeg95_agreement: float
    stable: int
    margin_median: float  # top-1 minus top-2 logit, fp32
    margin_median_stable: float | None
    margin_median_unstable: float | None
    share_margin_below_0_25: float
    files: list[FileAgreement]


def _pct(mask: np.ndarray) -> float | None:
    return round(100.0 * float(mask.mean()), 2) if mask.size else None


def _median(values: np.ndarray) -> float | None:
    return round(float(np.median(values)), 4) if values.size else None


def agreement_floor(fp32: Path, crops: Path, int8: dict[str, Path], draws: int = 5, seed: int = 0) -> Floor:
    clf = Classifier(fp32, provider="cpu")
    images = [decode_image(p) for p in walk_images(crops)]
    if not images:
        raise SystemExit(f"{crops}: no images")

    def top1(session: object, batch: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        logits = session_outputs(session, preprocess_batch(batch, clf.contract))  # float32[N, classes]
        return logits.argmax(1), logits

    answer, logits = top1(clf.session, images)
    ordered = np.sort(logits, axis=1)
    margin = ordered[:, -1] - ordered[:, -2]
    rng = np.random.default_rng(seed)
    stable = np.ones(len(images), dtype=bool)
    noise_agreement = []
    for _ in range(draws):  # +-1 grey level, rounded: each pixel moves by at most one level
        noisy = [np.clip(im + rng.uniform(-1.0, 1.0, im.shape), 0, 255).round().astype(np.uint8) for im in images]
        same = top1(clf.session, noisy)[0] == answer
        noise_agreement.append(_pct(same) or 0.0)
        stable &= same
    jpeg = [cv2.imdecode(cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 95])[1], cv2.IMREAD_COLOR)
            for im in images]
    same_jpeg = top1(clf.session, jpeg)[0] == answer
    stable &= same_jpeg
    files = []
    base = os.path.commonpath([fp32.resolve(), *(p.resolve() for p in int8.values())])  # paths in the file: relative
    for name, path in int8.items():
        agree = top1(Classifier(path, provider="cpu").session, images)[0] == answer
        where = os.path.relpath(path.resolve(), base)
        files.append(FileAgreement(name, where, _pct(agree) or 0.0, _pct(agree[stable]), _pct(agree[~stable])))
    return Floor(
        crops=len(images), draws=draws, noise_agreement=noise_agreement, jpeg95_agreement=_pct(same_jpeg) or 0.0,
        stable=int(stable.sum()), margin_median=_median(margin) or 0.0, margin_median_stable=_median(margin[stable]),
        margin_median_unstable=_median(margin[~stable]),
        share_margin_below_0_25=round(float((margin < 0.25).mean()), 4), files=files,
    )


def markdown(floor: Floor, title: str) -> str:
    noise = ", ".join(f"{a:.1f}%" for a in floor.noise_agreement)
    lines = [
        f"# {title}", "",
        f"{floor.crops} crops. fp32 against itself: +-1 grey level of noise ({floor.draws} draws) {noise}; JPEG q95 "
        f"re-encode {floor.jpeg95_agreement:.1f}%. Stable crops (fp32's answer unchanged by every draw and the "
        f"re-encode): **{floor.stable} of {floor.crops}**. Top-1 minus top-2 logit, median: {floor.margin_median:.3f} "
        f"(stable {floor.margin_median_stable}, the others {floor.margin_median_unstable}); "
        f"{100 * floor.share_margin_below_0_25:.1f}% of crops under 0.25.", "",
        "| int8 file | agreement with fp32, all crops | stable crops | the others |",
        "|---|---:|---:|---:|",
    ]
    for f in floor.files:
        lines.append(f"| {f.name} | {f.all_crops:.1f}% | {f.stable_crops}% | {f.unstable_crops}% |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fp32", required=True, type=Path)
    ap.add_argument("--crops", required=True, type=Path, help="folder of images (walked recursively)")
    ap.add_argument("--int8", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--title", default="fp32 against itself, and int8 on the crops fp32 can decide")
    ap.add_argument("--suffix", default="")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    int8 = dict(item.split("=", 1) for item in args.int8)
    floor = agreement_floor(args.fp32, args.crops, {k: Path(v) for k, v in int8.items()}, args.draws)
    env = collect_environment()
    stem = (f"AGREEMENT-FLOOR_{cpu_slug(env)}-{isa_slug(env)}_ort{env.versions.get('onnxruntime')}_"
            f"{env.timestamp[:10]}{'_' + args.suffix if args.suffix else ''}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps({"floor": asdict(floor), "environment": asdict(env)}, indent=1))
    (args.out / f"{stem}.md").write_text(markdown(floor, args.title))
    print(markdown(floor, args.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
