"""Runtime costs that matter on a device, measured (run under ``flock /tmp/edgecls-cpu.lock``):

1. Cold start of ``edgecls run MODEL image.jpg``: process start to printed result (console table and --json),
   plus the import time of the modules on that path.
2. Classifier overhead over a bare ``session.run`` at 224 px, batch 1, on the same session: the wrapper's
   validation, dtype handling, softmax and top-k. Also the full ``predict(image)`` (preprocessing included)
   for reference.
3. Folder throughput: batched inference with parallel decode (``classify_files``) vs a one-by-one loop
   (``classify_files_sequential``) and vs a naive loop that decodes every JPEG at full size, on real photos,
   with the cost components and the best speedup perfect overlap could give on this many cores.

Model: MobileNetV2 width 1.0 at 224 px with random weights (exported here with torch, TorchScript exporter),
the default edge model; images: crops of scikit-image's sample photos saved as 640x480 JPEGs.

    flock /tmp/edgecls-cpu.lock python benchmarks/runtime_overhead.py [--quick]

Every timing goes through the project's one timing loop (the ``latency`` module's ``warm_up`` and
``time_calls``), as ``edgecls bench`` does; a timed call here may be a whole process or a whole folder.

Writes ``benchmarks/results/runtime_<cpu>_ort<version>_<date>.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from edgecls.runtime.inference.latency import measure_latency, time_calls, warm_up

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LABELS = tuple(f"class_{i}" for i in range(10))


def export_mobilenetv2(path: Path, size: int = 224, arch: str = "mobilenetv2",
                       golden_images: Sequence[np.ndarray] = ()) -> Path:
    """MobileNetV2 (random weights, real BN statistics from a few forward passes) with an edgecls contract; with
    ``golden_images`` (decoded BGR ``uint8[H, W, 3]``) also its golden file beside it, written by export's own
    code (export/golden.py: the images at 64x64, their inputs, PyTorch's logits), as ``edgecls export`` does."""
    import onnx
    import torch

    from edgecls.models.registry import build_model
    from edgecls.runtime.contract.model_contract import METADATA_KEY, ModelContract

    torch.manual_seed(0)
    model = build_model(arch, len(LABELS), size)
    model.train()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        for _ in range(3):
            model(torch.randn(8, 3, size, size))
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            torch.randn(2, 3, size, size),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
        )
    m = onnx.load(str(path))
    entry = m.metadata_props.add()
    contract = ModelContract(labels=LABELS, input_size=(size, size), provenance={"arch": arch})
    entry.key, entry.value = METADATA_KEY, contract.to_json()
    onnx.save(m, str(path))
    if len(golden_images):
        from edgecls.export.golden import make_golden, write_golden
        from edgecls.runtime.device.golden_file import golden_path_for

        write_golden(golden_path_for(path), make_golden(golden_images, contract, model))
    return path


def write_photos(folder: Path, count: int) -> list[Path]:
    """``count`` 640x480 JPEGs cropped from scikit-image's bundled sample photos (no download)."""
    from skimage import data

    sources = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.hubble_deep_field()]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        img = sources[i % len(sources)]
        h, w = img.shape[:2]
        ch, cw = int(h * rng.uniform(0.5, 1.0)), int(w * rng.uniform(0.5, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = cv2.resize(img[y : y + ch, x : x + cw], (640, 480), interpolation=cv2.INTER_AREA)
        p = folder / f"photo_{i:04d}.jpg"
        cv2.imwrite(str(p), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(p)
    return paths


# --- 1. cold start ----------------------------------------------------------------------------------------
def cold_start(model: Path, image: Path, runs: int) -> dict:
    exe = Path(sys.executable).with_name("edgecls")
    cmd_base = [str(exe)] if exe.exists() else [sys.executable, "-m", "edgecls"]
    out: dict = {"command": " ".join([*cmd_base, "run", "MODEL", "IMAGE"])}
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    for mode, extra in (("table", []), ("json", ["--json"])):

        def run_once(extra: list[str] = extra) -> None:
            r = subprocess.run(
                [*cmd_base, "run", str(model), str(image), *extra], capture_output=True, text=True, env=env
            )
            if r.returncode != 0:
                raise SystemExit(f"edgecls run failed: {r.stderr}")

        # The first run only warms the page cache (.pyc, shared libraries): a warm-up call, not a sample.
        stats, _, _ = measure_latency(run_once, runs=runs, warmup=1)
        out[mode] = {
            "median_s": round(stats.p50_ms / 1e3, 4),
            "min_s": round(stats.min_ms / 1e3, 4),
            "max_s": round(stats.max_ms / 1e3, 4),
            "runs": runs,
        }
    # Where the time goes: import cost of the heavy modules on the `run` path (-X importtime, cumulative us).
    r = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import edgecls.cli, numpy, cv2, onnxruntime, edgecls.runtime.inference.classifier, "
            "edgecls.runtime.run.console_sinks, rich.console",
        ],
        capture_output=True,
        text=True,
    )
    imports = {}
    for line in r.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] in (
            "typer",
            "numpy",
            "cv2",
            "onnxruntime",
            "rich.console",
            "edgecls.cli",
            "edgecls.runtime.inference.classifier",
            "edgecls.runtime.run.console_sinks",
            "click",
        ):
            imports[parts[2]] = round(int(parts[1]) / 1000, 1)
    out["import_ms_cumulative"] = imports
    return out


# --- 2. classifier overhead ---------------------------------------------------------------------------------
def classifier_overhead(model: Path, image: Path, rounds: int, per_round: int) -> dict:
    from edgecls.runtime.images.decode import decode_image
    from edgecls.runtime.inference.classifier import Classifier

    clf = Classifier(model, provider="cpu")
    img = decode_image(image)
    x = clf.preprocess([img])
    feed = {clf.input_name: x}
    names = [clf.output_name]
    # The bare call goes through a lambda like the other two: the loop's own cost is the same in all three, so the
    # differences are the wrapper's alone.
    calls = (lambda: clf.session.run(names, feed), lambda: clf.classify(x, top_k=5), lambda: clf.predict(img, top_k=5))
    for call in calls[:2]:
        warm_up(call, 20)
    bare, wrapped, full = [], [], []
    for _ in range(rounds):  # interleaved blocks, so drift on a shared machine hits all three alike
        for samples, call in zip((bare, wrapped, full), calls, strict=True):
            samples.extend(time_calls(call, per_round))
    b, w, f = (statistics.median(v) for v in (bare, wrapped, full))
    return {
        "input": "1x3x224x224 float32, batch 1, CPUExecutionProvider, default threads",
        "bare_session_run_ms_p50": round(b, 3),
        "classifier_classify_ms_p50": round(w, 3),
        "classifier_predict_image_ms_p50": round(f, 3),
        "overhead_pct": round(100 * (w - b) / b, 2),
        "predict_with_preprocessing_overhead_pct": round(100 * (f - b) / b, 2),
        "samples_each": len(bare),
        "note": "classify = session.run + output checks + softmax + top-k on the same session; predict adds "
        "preprocessing of a 640x480 photo (resize, crop, normalise)",
    }


# --- 3. folder throughput ---------------------------------------------------------------------------------
def _once_ms(fn: Callable[[], object]) -> float:
    """Milliseconds of one call of ``fn`` (a whole folder, a batch), timed by the project's loop."""
    return time_calls(fn, runs=1)[0]


def _rate(fn: Callable[[], object], n: int) -> float:
    """Images per second of one pass of ``fn`` over ``n`` images."""
    return n * 1e3 / _once_ms(fn)


def folder_throughput(model: Path, paths: list[Path], repeats: int) -> dict:
    """One-by-one loops vs the batched parallel pipeline of ``edgecls run FOLDER``, plus the cost components.

    Loops compared (interleaved, medians of ``repeats``):
    - naive: full-resolution decode, preprocess, ``session.run`` per image (what a hand-written loop does);
    - one-by-one: the same with edgecls's decoding (large JPEGs at reduced scale), default and no-spin session;
    - batched: ``classify_files`` (decode threads + batches of 8, no-spin session), what ``edgecls run`` does.
    The speedup over the fastest one-by-one loop shows the batching/overlap alone; over naive, all of it.
    The bound says what perfect overlap could give on this machine: the fastest loop's time per image over
    decode + infer(b8) x threads core-milliseconds spread over all cores.
    """
    from edgecls.runtime.images.decode import decode_image
    from edgecls.runtime.inference.classifier import Classifier
    from edgecls.runtime.inference.preprocess import decode_for_contract, preprocess
    from edgecls.runtime.sources.image_batches import (
        classify_files,
        classify_files_sequential,
        default_workers,
    )

    default = Classifier(model, provider="cpu")
    nospin = Classifier(model, provider="cpu", spin=False)  # what `edgecls run` uses
    files = [str(p) for p in paths]

    def naive() -> None:
        for f in files:
            default.classify(preprocess(decode_image(f), default.contract)[None], 5)

    for c in (default, nospin):
        list(classify_files(c, files[:16]))  # warm-up
    full, seq, seq_nospin, par = [], [], [], []
    for _ in range(repeats):  # interleaved so load changes on the shared machine hit all of them
        full.append(_rate(naive, len(files)))
        seq.append(_rate(lambda: list(classify_files_sequential(default, files)), len(files)))
        seq_nospin.append(_rate(lambda: list(classify_files_sequential(nospin, files)), len(files)))
        par.append(_rate(lambda: list(classify_files(nospin, files, batch_size=8)), len(files)))
    a = [r.predictions[0].index for r in classify_files_sequential(default, files[:16])]
    b = [r.predictions[0].index for r in classify_files(nospin, files[:16])]
    assert a == b, "batched and one-by-one results differ"
    n0, s, s2, p = (statistics.median(v) for v in (full, seq, seq_nospin, par))

    # Components, single-threaded decode as in the loops: ms per image.
    sample = files[: min(len(files), 16)]
    x1: list[np.ndarray] = []  # float32[3, S, S] per image, kept for the inference timings below
    dec = _once_ms(lambda: x1.extend(preprocess(decode_for_contract(f, nospin.contract), nospin.contract)
                                     for f in sample)) / len(sample)
    dec_full = _once_ms(lambda: [preprocess(decode_image(f), nospin.contract) for f in sample]) / len(sample)
    batch8 = np.stack((x1 * 8)[:8])
    inf1 = statistics.median(time_calls(lambda: nospin.classify(batch8[:1], 5), runs=20))
    inf8 = statistics.median(time_calls(lambda: nospin.classify(batch8, 5), runs=8)) / 8
    cores = os.cpu_count() or 1
    threads = min(cores, 2)
    # Perfect overlap: every core busy, spread over decode + batched inference (threads x its time).
    best_loop_ms = 1e3 / max(n0, s, s2)
    bound = best_loop_ms / max(inf8, (dec + inf8 * threads) / cores)
    return {
        "images": len(files),
        "batch_size": 8,
        "workers": default_workers(),
        "naive_full_decode_one_by_one_images_per_s": round(n0, 2),
        "one_by_one_default_session_images_per_s": round(s, 2),
        "one_by_one_no_spin_images_per_s": round(s2, 2),
        "batched_parallel_images_per_s": round(p, 2),
        "speedup_vs_best_one_by_one": round(p / max(n0, s, s2), 3),  # the fastest of the three loops
        "speedup_vs_default_one_by_one": round(p / s, 3),
        "speedup_vs_naive_full_decode_loop": round(p / n0, 3),
        "decode_preprocess_ms_per_image": round(dec, 2),
        "full_decode_preprocess_ms_per_image": round(dec_full, 2),
        "infer_ms_per_image_batch1_no_spin": round(inf1, 2),
        "infer_ms_per_image_batch8": round(inf8, 2),
        "perfect_overlap_bound_vs_one_by_one": round(bound, 3),
        "repeats": repeats,
    }


def write_resized(paths: list[Path], folder: Path, size: tuple[int, int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in paths:
        q = folder / p.name
        cv2.imwrite(
            str(q),
            cv2.resize(cv2.imread(str(p)), size, interpolation=cv2.INTER_CUBIC),
            [cv2.IMWRITE_JPEG_QUALITY, 90],
        )
        out.append(q)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, not for publishing)")
    args = ap.parse_args()
    from edgecls.runtime.bench.env import collect_environment, environment_slug

    env = collect_environment()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        model = export_mobilenetv2(d / "mobilenetv2_224.onnx")
        photos = write_photos(d / "photos", 48 if args.quick else 160)
        photos1080 = write_resized(photos[:64], d / "photos1080", (1920, 1080))
        reps = 1 if args.quick else 5
        result = {
            "benchmark": "runtime_overhead",
            "command": "flock /tmp/edgecls-cpu.lock python benchmarks/runtime_overhead.py"
            + (" --quick" if args.quick else ""),
            "model": "mobilenetv2 width 1.0, 224 px, 10 classes, random weights, fp32, opset 17",
            "environment": env.to_dict(),
            "cold_start": cold_start(model, photos[0], runs=3 if args.quick else 7),
            "classifier_overhead": classifier_overhead(model, photos[0], rounds=4 if args.quick else 10, per_round=25),
            # The gain depends on how much of the work is decoding: a 224 px MobileNetV2 already keeps
            # both cores busy, so small photos gain little; big photos and small models gain most.
            "folder_throughput": {
                "640x480 JPEG, mobilenetv2 224": folder_throughput(model, photos, repeats=reps),
                "1920x1080 JPEG, mobilenetv2 224": folder_throughput(model, photos1080, repeats=reps),
                "4032x3024 JPEG (12 MP phone size), mobilenetv2 224": folder_throughput(
                    model, write_resized(photos[:24], d / "photos12mp", (4032, 3024)), repeats=reps
                ),
                "1920x1080 JPEG, mobilenetv2_050 128": folder_throughput(
                    export_mobilenetv2(d / "mobilenetv2_050_128.onnx", 128, "mobilenetv2_050"),
                    photos1080,
                    repeats=reps,
                ),
            },
        }
    # Other work on a shared box (outside the lock) shows up here; numbers under load are pessimistic.
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"runtime_{environment_slug(env)}.json"
    from edgecls.runtime.atomic import atomic_write_text

    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    cs, co, ft = result["cold_start"], result["classifier_overhead"], result["folder_throughput"]
    print(
        f"cold start (edgecls run MODEL image.jpg): table {cs['table']['median_s']} s, json {cs['json']['median_s']} s"
    )
    print(
        f"classifier overhead at 224 px: {co['overhead_pct']}% ({co['bare_session_run_ms_p50']} -> "
        f"{co['classifier_classify_ms_p50']} ms); "
        f"with preprocessing {co['classifier_predict_image_ms_p50']} ms"
    )
    for size, f in ft.items():
        print(
            f"folder {size}: one-by-one {f['one_by_one_default_session_images_per_s']} / "
            f"{f['one_by_one_no_spin_images_per_s']} (no spin) img/s, batched+parallel "
            f"{f['batched_parallel_images_per_s']} img/s = {f['speedup_vs_best_one_by_one']}x vs the best loop "
            f"(bound {f['perfect_overlap_bound_vs_one_by_one']}x), {f['speedup_vs_naive_full_decode_loop']}x vs "
            f"naive full-decode loop {f['naive_full_decode_one_by_one_images_per_s']} img/s"
        )
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
