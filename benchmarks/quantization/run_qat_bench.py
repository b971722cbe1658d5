"""Does quantization-aware fine-tuning close the int8 gap? fp32 vs post-training int8 vs QAT int8 on edgecls runs.

For each ``--run NAME=RUN_DIR`` (an edgecls training run on a labelled folder or built-in set):
1. the fp32 export (``export_checkpoint``);
2. ``quantize_model`` twice: edgecls's post-training int8 at the default 1-point budget, and the same call with
   the QAT repair forced (``QatPlan(always=True)``: ``--epochs`` of QAT on the run's training split, its trial kept
   only when it measures better on the search images, as ``export --quantize --qat`` keeps it); both graded by
   edgecls on the same held-out half of the run's validation split; files written even over budget;
3. the fp32 model and both int8 files graded on the run's *test* split, which no step saw: top-1, agreement with
   fp32, logit error, the fused graph's int8 / float convs;
4. (``--phase latency``, under the CPU lock) batch-1 latency, 2 threads, the three models interleaved round by
   round; the median of the rounds' p50 with their range.

    python benchmarks/quantization/run_qat_bench.py --run mnv2=RUN --work W --epochs 3 --phase quantize
    flock /tmp/edgecls-cpu.lock python benchmarks/quantization/run_qat_bench.py --work W --phase latency
Results: RESULTS-QAT_<cpu>_<isa>_ort<version>_<date>.{md,json} in --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from measure_variants import grade, interleaved_latency  # noqa: E402
from study_env import environment, log  # noqa: E402

from edgecls.export.export_run import ExportOptions, export_checkpoint  # noqa: E402
from edgecls.export.metadata import read_contract_file  # noqa: E402
from edgecls.export.quant.grading.image_sets import images_from_run  # noqa: E402
from edgecls.export.quant.options import QuantizeOptions  # noqa: E402
from edgecls.export.quant.pipeline import quantize_model  # noqa: E402
from edgecls.export.quant.repairs.qat import QatPlan  # noqa: E402
from edgecls.export.run_data import data_ref_of  # noqa: E402
from edgecls.runtime.atomic import atomic_write_text  # noqa: E402
from edgecls.training.checkpoint import load_checkpoint  # noqa: E402

LABELS = {
    "fp32": "fp32",
    "ptq": "int8 post-training (edgecls, 1-point budget)",
    "qat": "int8 with the QAT repair (edgecls --qat; QAT's trial published only when it measured better)",
}
TIMED = ("fp32", "ptq", "qat")


def quantize_phase(name: str, run: Path, work: Path, epochs: int) -> dict[str, Any]:
    case_dir = work / name
    export_checkpoint(run, ExportOptions(out_dir=str(case_dir), parity_images=16), log=log)
    fp32 = case_dir / "model.onnx"
    contract = read_contract_file(fp32)
    assert contract is not None
    ckpt = load_checkpoint(run)
    ref = data_ref_of(ckpt.raw, ckpt.path)
    assert ref is not None, f"{run}: no data reference"
    calib = images_from_run(ref, "train", contract, 500)
    val = images_from_run(ref, "val", contract, 1000)
    test = images_from_run(ref, "test", contract, None)
    options = QuantizeOptions(allow_over_budget=True, cache_dir=str(work / "cache"))
    paths = {"fp32": fp32, "ptq": case_dir / "ptq" / "model.int8.onnx", "qat": case_dir / "qat" / "model.int8.onnx"}
    sides = {}
    for key, qat in (("ptq", None), ("qat", QatPlan(ckpt, ref, epochs, always=True))):
        report = quantize_model(fp32, paths[key], calib, val, contract, options, log, qat=qat)
        sides[key] = {**report.summary(), "published": report.recipe.describe(len(report.nodes_kept_float))}
    graded = grade(paths, set(), test, contract, fp32)
    result = {
        "run": str(run),
        "arch": ckpt.arch,
        "data": ref.spec,
        "images": {"calibration": len(calib), "validation": len(val), "test": len(test)},
        "paths": {k: str(v) for k, v in paths.items()},
        "test": graded,
        "edgecls": {**sides, "epochs": epochs, "training": sides["qat"]["qat"]},
        "input_size": list(contract.input_size),
        "quantize_loadavg_end": os.getloadavg(),
    }
    atomic_write_text(case_dir / "qat_bench.json", json.dumps(result, indent=2, default=str) + "\n")
    return result


def latency_phase(result: dict[str, Any], rounds: int, runs: int) -> None:
    paths = {k: Path(v) for k, v in result["paths"].items() if k in TIMED}
    start = os.getloadavg()
    result["latency"] = interleaved_latency(paths, tuple(result["input_size"]), rounds, runs)
    result["latency_loadavg"] = {"start": start, "end": os.getloadavg()}


def pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    title = (
        f"# fp32 vs post-training int8 vs QAT int8 on {env['cpu']} ({env['isa']['isa']}), "
        f"onnxruntime {env['onnxruntime']}, {env['date']}"
    )
    setting = (
        f"{env['cores']} cores, {env['threads']} threads, batch 1; torch {env['torch']}. Top-1 on each run's test "
        "split, which neither calibration, the fine-tuning, nor the int8 search saw. edgecls's own verdicts are on "
        "the held-out half of the run's validation split."
    )
    lines = [title, "", setting, ""]
    for name, r in results["cases"].items():
        rec = r["edgecls"]
        tr = rec.get("training") or {}
        lines += [
            f"## {name}",
            "",
            f"edgecls run `{r['run']}` ({r['arch']}, data {r['data']}); {r['images']['calibration']} calibration "
            f"(train split), {r['images']['validation']} validation, {r['images']['test']} test images. QAT: "
            f"{rec['epochs']} epochs at lr {tr.get('lr', 0):.2g} on {tr.get('train_images')} training images, "
            f"{tr.get('seconds', 0):.0f} s (simulating {tr.get('simulated')}).",
            "",
        ]
        lat = r.get("latency")
        if lat:
            la = r["latency_loadavg"]
            note = r.get("latency_note", "")
            lines += [f"Latency: load average {la['start']} at start, {la['end']} at end; {note}", ""]
        lines += [
            "| model | test top-1 | agreement with fp32 | logit rel. error | int8 / float convs | held-out verdict "
            "(edgecls) | p50 ms | speed vs fp32 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, label in LABELS.items():
            if key not in r["test"]:
                continue
            t = r["test"][key]
            fusion = t.get("fusion")
            side = rec.get(key) if key in ("ptq", "qat") else None
            verdict = "-" if side is None else f"{side['verdict']} ({'met' if side['budget_met'] else 'missed'})"
            ms = speed = "-"
            if lat and key in lat:
                ms = f"{lat[key]['p50_ms']:.2f} [{lat[key]['min_ms']:.2f}-{lat[key]['max_ms']:.2f}]"
                speed = f"{lat['fp32']['p50_ms'] / lat[key]['p50_ms']:.2f}x"
            convs = "-" if fusion is None else f"{fusion['int8_convs']} / {fusion['float_convs']}"
            lines.append(
                f"| {label} | {pct(t.get('top1'))} | {pct(t['agreement'])} | {t['relative_error']:.4f} | {convs} | "
                f"{verdict} | {ms} | {speed} |"
            )
        if tr.get("history"):
            lines += ["", "| QAT epoch | loss | fake-int8 train top-1 | seconds |", "|---|---|---|---|"]
            lines += [
                f"| {h['epoch'] + 1} | {h['loss']:.4f} | {pct(h['acc'])} | {h['seconds']:.0f} |" for h in tr["history"]
            ]
        lines.append("")
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR (repeatable)")
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--phase", choices=("quantize", "latency", "all"), default="all")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--note", action="append", default=[], help="a line for the results' notes")
    ap.add_argument("--latency-note", default="", help="e.g. whether the latency phase held the CPU lock")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    state = args.work / "qat_results.json"
    results = json.loads(state.read_text()) if state.is_file() else {"environment": environment(), "cases": {}}
    if args.phase in ("quantize", "all"):
        for spec in args.run:
            name, run = spec.split("=", 1)
            results["cases"][name] = quantize_phase(name, Path(run), args.work, args.epochs)
            atomic_write_text(state, json.dumps(results, indent=2, default=str) + "\n")
    if args.phase in ("latency", "all"):
        for r in results["cases"].values():
            latency_phase(r, args.rounds, args.runs)
            r["latency_note"] = args.latency_note
    results["notes"] = results.get("notes", []) + args.note
    results["environment"]["loadavg_end"] = os.getloadavg()
    atomic_write_text(state, json.dumps(results, indent=2, default=str) + "\n")
    env = results["environment"]
    stem = f"RESULTS-QAT_{env['cpu'].replace(' ', '-')}_{env['isa']['isa']}_ort{env['onnxruntime']}_{env['date']}"
    atomic_write_text(args.out / f"{stem}.json", json.dumps(results, indent=2, default=str) + "\n")
    atomic_write_text(args.out / f"{stem}.md", markdown(results))
    log(f"wrote {args.out / stem}.md/.json")


if __name__ == "__main__":
    main()
