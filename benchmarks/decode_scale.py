"""What reduced-scale JPEG decoding costs in accuracy and saves in time (run under ``flock /tmp/edgecls-cpu.lock``).

edgecls decodes a JPEG at 1/2, 1/4 or 1/8 scale when it stays at least the contract's resize floor (256 px
for a 224 px model with crop 0.875). This script measures, per photo size:
- decode + preprocess time, full decode vs reduced (single thread): every image once per mode through the shared
  timing loop (edgecls.runtime.inference.latency, one timed call per image, no warm-up), the median over the images;
- the mean absolute difference of the model input (normalised units) against full decode + linear resize,
  and against full decode + area resize (the least aliased reference);
- with ``--model`` (an edgecls .onnx, ideally a real ImageNet network): top-1 agreement and the mean
  absolute change of the top-1 probability between the two decodes.

Photos: random crops of scikit-image's sample photos (no download) resized to each size with light
Gaussian sensor noise (sigma 3 grey levels) so the large files carry pixel-level detail, saved as JPEG q90.
Upscaled photos have less real detail than a camera's, so this is a lower bound on the difference.

    flock /tmp/edgecls-cpu.lock python benchmarks/decode_scale.py --model MODEL.onnx [--images 48]
    flock /tmp/edgecls-cpu.lock python benchmarks/decode_scale.py --model EXPORT/model.onnx --labelled builtin:shapes

Writes ``benchmarks/results/decode_scale_<data>_<cpu>_ort<version>_<date>.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecls.runtime.inference.latency import LatencyStats, measure_latency

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "quantization"))
SIZES = ((1280, 720), (1920, 1080), (4032, 3024))


def source_images(count: int, seed: int, labelled: str | None, labels: tuple[str, ...]) -> tuple[list, list]:
    """(uint8 BGR images, contract label index or -1): photo crops, or a built-in set's held-out test split."""
    if labelled is None:
        from photo_data import random_crops

        crops, _ = random_crops(count, seed=seed, min_frac=0.5, max_frac=1.0)
        return crops, [-1] * len(crops)
    from edgecls.data.load import load_data

    test = load_data(labelled).test  # the same seeded split training held out
    idx = np.linspace(0, len(test) - 1, min(count, len(test))).astype(int)
    return [test.load(int(i)) for i in idx], [labels.index(test.classes[test.label(int(i))]) for i in idx]


def make_jpegs(crops: list[np.ndarray], size: tuple[int, int], seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for crop in crops:
        big = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC).astype(np.float32)
        big += rng.normal(0.0, 3.0, big.shape).astype(np.float32)
        ok, enc = cv2.imencode(".jpg", np.clip(big, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
        out.append(enc.tobytes())
    return out


def timed_pass(jpegs: list[bytes], decode_one: Callable[[bytes], Any]) -> tuple[LatencyStats, list[Any]]:
    """Every JPEG through ``decode_one`` once, each call timed by the shared timing loop: one sample per image (no
    warm-up: each image is new to the decoder, as a camera's or an upload's is), and what each call returned."""
    outputs: list[Any] = []
    pending = iter(jpegs)

    def call() -> None:
        outputs.append(decode_one(next(pending)))

    stats, _, _ = measure_latency(call, runs=len(jpegs), warmup=0)
    return stats, outputs


def measure(jpegs: list[bytes], labels: list[int], contract, classifier) -> dict:
    from edgecls.runtime.images.decode import decode_bytes
    from edgecls.runtime.inference.preprocess import decode_floor, preprocess

    floor = decode_floor(contract)
    area = type(contract).from_dict({**contract.to_dict(), "interpolation": "area"})
    # float32[3, H, W] model inputs: full decode + the contract's resize, reduced decode + the same resize
    full_stats, x_full = timed_pass(jpegs, lambda data: preprocess(decode_bytes(data), contract))
    red_stats, reduced = timed_pass(jpegs, lambda data: _reduced_input(data, floor, contract))
    x_red = [x for x, _ in reduced]
    reduced_shape = reduced[-1][1] if reduced else None
    # the least aliased reference: full decode + area resize (untimed; decoded again so 12 MP frames are not kept)
    x_area = [preprocess(decode_bytes(data), area) for data in jpegs]
    d_full = [float(np.abs(a - b).mean()) for a, b in zip(x_full, x_red, strict=True)]
    d_area_full = [float(np.abs(a - ref).mean()) for a, ref in zip(x_full, x_area, strict=True)]
    d_area_red = [float(np.abs(b - ref).mean()) for b, ref in zip(x_red, x_area, strict=True)]
    row = {
        "images": len(jpegs),
        "reduced_decode_shape": list(reduced_shape or ()),
        "full_decode_preprocess_ms_p50": round(full_stats.p50_ms, 2),
        "reduced_decode_preprocess_ms_p50": round(red_stats.p50_ms, 2),
        "speedup": round(full_stats.p50_ms / red_stats.p50_ms, 2),
        "input_mean_abs_diff_reduced_vs_full": round(statistics.mean(d_full), 4),
        "input_mean_abs_diff_vs_area_reference": {
            "full_decode_linear": round(statistics.mean(d_area_full), 4),
            "reduced_decode_linear": round(statistics.mean(d_area_red), 4),
        },
    }
    if classifier is not None:
        p_full, p_red, p_area = (_probabilities(classifier, x) for x in (x_full, x_red, x_area))
        top_full = p_full.argmax(1)
        rows = np.arange(len(top_full))
        row["top1_agreement"] = round(float((top_full == p_red.argmax(1)).mean()), 4)
        change = np.abs(p_full[rows, top_full] - p_red[rows, top_full])
        row["top1_prob_mean_abs_change"] = round(float(change.mean()), 4)
        # How sensitive the model is to an equally valid preprocessing change: area instead of linear resize.
        row["reference_top1_agreement_area_vs_linear"] = round(float((top_full == p_area.argmax(1)).mean()), 4)
        row["model_top1_prob_median"] = round(float(np.median(p_full[rows, top_full])), 4)
        y = np.asarray(labels)
        if (y >= 0).all():
            row["top1_accuracy_full_decode"] = round(float((top_full == y).mean()), 4)
            row["top1_accuracy_reduced_decode"] = round(float((p_red.argmax(1) == y).mean()), 4)
    return row


def _reduced_input(data: bytes, floor: tuple[int, int] | None, contract) -> tuple[np.ndarray, tuple[int, int]]:
    """The model input from a reduced-scale decode, and the decoded (H, W)."""
    from edgecls.runtime.images.decode import decode_bytes
    from edgecls.runtime.inference.preprocess import preprocess

    img = decode_bytes(data, "photo.jpg", floor)
    return preprocess(img, contract), img.shape[:2]


def _probabilities(classifier, inputs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([classifier.probabilities(np.stack(inputs[i : i + 8])) for i in range(0, len(inputs), 8)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="an .onnx classifier with an edgecls contract")
    ap.add_argument("--images", type=int, default=48, help="photos per size")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="results folder")
    ap.add_argument("--tag", help="result file tag (default: the data's name)")
    ap.add_argument("--labelled", help="use this built-in set's test split (e.g. builtin:shapes) and report accuracy")
    args = ap.parse_args()
    from edgecls.runtime.atomic import atomic_write_text
    from edgecls.runtime.bench.env import collect_environment, environment_slug
    from edgecls.runtime.contract.model_contract import ModelContract
    from edgecls.runtime.inference.classifier import Classifier

    classifier = Classifier(args.model, provider="cpu") if args.model else None
    contract = classifier.contract if classifier else ModelContract(labels=("a", "b"), input_size=(224, 224))
    env = collect_environment()
    result = {
        "benchmark": "decode_scale",
        "command": "python benchmarks/decode_scale.py" + (f" --model {args.model.name}" if args.model else ""),
        "model": args.model.name if args.model else None,
        "images": args.labelled or "scikit-image photo crops",
        "contract": {"input_size": list(contract.input_size), "resize_mode": contract.resize_mode,
                     "crop_fraction": contract.crop_fraction, "interpolation": contract.interpolation},
        "environment": env.to_dict(),
        "sizes": {},
    }
    for i, size in enumerate(SIZES):
        agree = ""
        images, labels = source_images(args.images, i, args.labelled, contract.labels)
        row = measure(make_jpegs(images, size, seed=i), labels, contract, classifier)
        result["sizes"][f"{size[0]}x{size[1]}"] = row
        if "top1_accuracy_full_decode" in row:
            agree = (f", top-1 accuracy {100 * row['top1_accuracy_full_decode']:.1f}% full vs "
                     f"{100 * row['top1_accuracy_reduced_decode']:.1f}% reduced")
        agree += (
            f", top-1 agreement {100 * row['top1_agreement']:.1f}% (area vs linear resize: "
            f"{100 * row['reference_top1_agreement_area_vs_linear']:.1f}%)"
            if "top1_agreement" in row
            else ""
        )
        print(
            f"{size[0]}x{size[1]}: decode+preprocess {row['full_decode_preprocess_ms_p50']} -> "
            f"{row['reduced_decode_preprocess_ms_p50']} ms ({row['speedup']}x), input diff "
            f"{row['input_mean_abs_diff_reduced_vs_full']}{agree}"
        )
    tag = args.tag or (args.labelled or "photos").replace("builtin:", "")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"decode_scale_{tag}_{environment_slug(env)}.json"
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
