"""Where int8 time goes on onnxruntime, node by node, and what the kernel options and the search's speed step buy
(issue 32's speed-aware part), for edgecls's MobileNetV2 (224 px) and the third-party EfficientNet-Lite0.

    python benchmarks/quantization/node_speed_study.py --work W --phase quantize
    flock /tmp/edgecls-cpu.lock python benchmarks/quantization/node_speed_study.py --work W --phase time

The quantize phase exports both models (``case_models.export_byo``; MobileNetV2 with random weights: speed does
not depend on them, accuracy is the reconstruction study's) and writes the int8 variants: edgecls's x86 recipe
(u8s8 per-channel MinMax, every conv int8), s8s8, symmetric activations (zero point 0) both ways, the search's
speed step applied to the u8s8 file (``speed_step.faster_int8``: it profiles, tries float where int8 is slower
and keeps what measures faster), and the u8s8 graph as onnxruntime optimised it, saved offline
(``SessionOptions.optimized_model_filepath``). The time phase, under the CPU lock, times every variant against
the fp32 file with the search's own interleaved timing (``paired_timing.time_ratio``: sessions as ``edgecls
bench`` makes them, batch 1, physical cores, no spinning), the int8 and fp32 files on OpenVINO too, profiles
fp32 and u8s8 per node (``node_profile``) and measures session creation of the offline-optimised file. On a box
other work loads, ``chrt -r 1`` before ``python`` gives the timing phase the cores (round-robin real-time
priority; the run is a minute or two): the ratios then match a quiet box.

Results: NODE-SPEED_<cpu>_<isa>_ort<version>_<date>.{json,md} beside this file (``node_speed_results.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from case_models import effnet_lite0_case, export_byo
from node_speed_results import CONV_KINDS, write_results
from photo_data import PHOTOS, random_crops
from study_env import environment, log

from edgecls.export.metadata import contract_of
from edgecls.export.parity import onnx_logits
from edgecls.export.quant.grading.image_sets import ImageList
from edgecls.export.quant.qdq.static_quantizer import StaticQuantizer
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.export.quant.search.node_profile import kind_totals, profile_nodes
from edgecls.export.quant.search.paired_timing import time_ratio
from edgecls.export.quant.search.speed_step import faster_int8
from edgecls.export.quant.search.trials import TrialBench
from edgecls.runtime.contract.options import ContractOptions

HERE = Path(__file__).resolve().parent
#: The int8 variants every case is quantized to (edgecls's x86 recipe first).
KERNEL_RECIPES = (
    QuantRecipe("u8s8"),
    QuantRecipe("s8s8", activation_type="QInt8"),
    QuantRecipe("u8s8-symmetric", activation_symmetric=True),
    QuantRecipe("s8s8-symmetric", activation_type="QInt8", activation_symmetric=True),
)


def _export(name: str, work: Path, thirdparty: str) -> Path:
    if name == "effnet-lite0":
        case = effnet_lite0_case(thirdparty, work)
        return export_byo(case.name, case.spec, None, case.labels, case.contract, work)
    return export_byo(
        "mnv2-224", f"{HERE / 'photo_model.py'}:build", None, list(PHOTOS), ContractOptions(input_size="224"), work
    )


def _save_optimized(path: Path, out: Path) -> Path:
    """``path`` as onnxruntime optimises it here (level ALL, as edgecls runs it), saved to ``out``."""
    import onnxruntime as ort

    from edgecls.runtime.providers.session import session_options

    so = session_options()
    so.optimized_model_filepath = str(out)
    ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    return out


def quantize_phase(name: str, work: Path, thirdparty: str) -> dict[str, Any]:
    fp32 = _export(name, work, thirdparty)
    contract = contract_of(__import__("onnx").load(str(fp32), load_external_data=False))
    assert contract is not None
    calib = ImageList("photo crops seed 11", random_crops(64, 11)[0], None, [])
    quantizer = StaticQuantizer(fp32, calib, contract, work / f"{name}-q", log=log)
    files = {"fp32": fp32}
    for recipe in KERNEL_RECIPES:
        files[recipe.name] = quantizer.quantize(recipe, work / f"{name}-{recipe.name}.onnx")
        log(f"[{name}] wrote {recipe.name}")
    files["u8s8-optimized-offline"] = _save_optimized(files["u8s8"], work / f"{name}-u8s8-optimized-offline.onnx")
    # The search's speed step on the u8s8 pick (accuracy on 32 search crops; the budget is open: speed only).
    x = ImageList("photo crops seed 12", random_crops(32, 12)[0], None, []).inputs(contract)
    bench = TrialBench(quantizer, x, None, onnx_logits(fp32, x), work / f"{name}-q", log=log, fp32_path=fp32)
    step = faster_int8(bench, bench.try_recipe(KERNEL_RECIPES[0]), 100.0)
    files["speed-step pick"] = step.pick.path
    return {
        "files": {k: str(v) for k, v in files.items()}, "speed_step": step.notes, "speed_step_kinds": step.kinds,
        "quantize_loadavg": [round(v, 2) for v in os.getloadavg()],
    }


def _session_ms(path: Path, repeats: int = 5) -> float:
    from edgecls.runtime.providers.session import create_session

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        create_session(path, provider="cpu", spin=False)
        times.append(1000 * (time.perf_counter() - t0))
    return sorted(times)[len(times) // 2]


def _ratio_row(a: Path, b: Path, providers: tuple[str, str]) -> dict[str, Any]:
    r = time_ratio(a, b, providers=providers)
    assert r.a is not None and r.b is not None
    return {
        "speedup": round(1 / r.median, 3), "rounds": len(r.ratios),
        "round_speedups": [round(1 / x, 3) for x in r.ratios], "p50_ms": round(r.a.p50_ms, 3),
        "fp32_p50_ms": round(r.b.p50_ms, 3), "spread": round(r.a.spread, 3), "providers": list(providers),
        "loadavg": [round(v, 2) for v in os.getloadavg()],
    }


def time_phase(case: dict[str, Any]) -> dict[str, Any]:
    files = {k: Path(v) for k, v in case["files"].items()}
    fp32 = files["fp32"]
    rows = {}
    for label, path in files.items():
        if label != "fp32":
            rows[f"onnxruntime {label}"] = _ratio_row(path, fp32, ("cpu", "cpu"))
            log(f"  {label}: {rows[f'onnxruntime {label}']['speedup']}x onnxruntime fp32")
    for label in ("fp32", "u8s8"):
        rows[f"OpenVINO {label}"] = _ratio_row(files[label], fp32, ("openvino", "cpu"))
        log(f"  OpenVINO {label}: {rows[f'OpenVINO {label}']['speedup']}x onnxruntime fp32")
    profiles = {label: profile_nodes(files[label]) for label in ("fp32", "u8s8")}
    kinds = {label: kind_totals(p) for label, p in profiles.items()}
    int8_convs = sum(v for k, v in kinds["u8s8"].items() if k in CONV_KINDS)
    return {
        "latency": rows,
        "node_kinds_us": kinds,
        # If every non-conv node of the int8 graph took no time: the most its kernels allow.
        "conv_only_ceiling": round(sum(kinds["fp32"].values()) / max(int8_convs, 1e-9), 3),
        "profile_sum_ms": {label: round(sum(v.values()) / 1000, 3) for label, v in kinds.items()},
        "session_create_ms": {
            label: round(_session_ms(files[label]), 1) for label in ("fp32", "u8s8", "u8s8-optimized-offline")
        },
        "nodes": {label: [t.to_dict() for t in p] for label, p in profiles.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--phase", choices=("quantize", "time"), required=True)
    ap.add_argument("--cases", default="mnv2-224,effnet-lite0")
    ap.add_argument("--thirdparty", default="", help="folder holding the Lite0 PyPI packages (default: installed)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    state = args.work / "node_speed_state.json"
    if args.phase == "quantize":
        cases = {name: quantize_phase(name, args.work, args.thirdparty) for name in args.cases.split(",")}
        state.write_text(json.dumps(cases, indent=1))
        return
    cases = json.loads(state.read_text())
    env = environment()
    env["scheduling"] = "SCHED_RR (chrt -r 1)" if os.sched_getscheduler(0) == os.SCHED_RR else "normal"
    for name, case in cases.items():
        log(f"[{name}] timing (load {os.getloadavg()})")
        case.update(time_phase(case))
    env["loadavg_end"] = os.getloadavg()
    for path in write_results(env, cases, HERE):
        log(f"wrote {path}")


if __name__ == "__main__":
    main()
