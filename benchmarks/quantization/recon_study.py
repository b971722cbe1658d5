"""Layer-wise reconstruction variants on the file the default search reconstructs, graded where the verdict is made.

The default ``edgecls quantize`` of third-party EfficientNet-Lite0 (``run_recon_bench.py``'s crops: 256 calibration,
640 validation, 400 test) reconstructs the recipe u8s8 per-channel, PerTensor ranges, bias-corrected. This study
writes that file once (``prepare``), then reconstructs a copy of it per variant (``ReconstructSettings`` fields,
torch threads, the moments' position floor) and grades each on the three sets of decisive crops the call and the
benchmark use: the search part (143) and the held-out part (292) of the validation crops, split as
``quantize`` splits them, and the 400 test crops (254 decisive). Per variant: wall and CPU seconds of the
reconstruction and of its parts (``stage_timer``), the file's sha256, changed decisive answers per set, agreement
on all crops, logit error. ``--busy N`` runs N busy processes, each pinned to one core, beside the variant (the
determinism check: the same bytes as without them).

    flock /tmp/edgecls-cpu.lock chrt -r 1 python benchmarks/quantization/recon_study.py --work W \\
        --variant ordered --variant ordered:threads=2 --variant adaround:steps=400 --out R.json
(W: ``run_recon_bench.py``'s --work folder; a variant is SOLVER[:field=value,...], fields of ReconstructSettings.)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from stage_timer import StageTimer  # noqa: E402

BUSY = "while True: pass"


def prepare(work: Path) -> Path:
    """The base file, its float source and the graded sets in ``work/recon-study`` (made once, then reused)."""
    study = work / "recon-study"
    if (study / "sets.npz").is_file():
        return study
    from measure_variants import graded_crops

    from edgecls.export.metadata import read_contract_file
    from edgecls.export.parity import onnx_logits
    from edgecls.export.quant.grading.decisive import onnx_decisive_images
    from edgecls.export.quant.grading.holdout import HOLDOUT_FRACTION, MAX_SEARCH_IMAGES
    from edgecls.export.quant.grading.image_sets import evenly_spaced, load_role_images, split_disjoint
    from edgecls.export.quant.qdq.static_quantizer import StaticQuantizer
    from edgecls.export.quant.recipes import QuantRecipe

    study.mkdir(parents=True, exist_ok=True)
    fp32 = work / "effnet-lite0" / "model.onnx"
    contract = read_contract_file(fp32)
    assert contract is not None
    calib = load_role_images(work / "recon-calibration", contract, "calibration")
    validation = load_role_images(work / "recon-validation", contract, "validation")
    test = load_role_images(work / "recon-test", contract, "validation")
    q = StaticQuantizer(fp32, calib, contract, study / "q")
    recipe = QuantRecipe("u8s8", calibrate_method="PerTensor", bias_correction=True)  # what the search reconstructs
    q.quantize(recipe, study / "base.onnx")
    shutil.copy(q.float_path(recipe), study / "float_src.onnx")
    share = max(HOLDOUT_FRACTION, 1.0 - MAX_SEARCH_IMAGES / len(validation))
    sets: dict[str, np.ndarray] = {}
    parts = split_disjoint(validation, share, ("search", "held-out"))
    for name, part in zip(("search", "holdout"), parts, strict=True):
        x = part.inputs(contract)
        ref = onnx_logits(fp32, x)
        sets.update({f"{name}_x": x, f"{name}_ref": ref})
        sets[f"{name}_dec"] = onnx_decisive_images(fp32, part.images, ref, contract).mask
    g = graded_crops(test, contract, fp32)
    sets.update({"test_x": g.inputs, "test_ref": g.fp32_logits, "test_dec": g.decisive})
    idx = evenly_spaced(len(calib), 256)
    np.save(study / "calib.npy", calib.inputs_slice(contract, 0, len(calib))[idx])
    np.savez(study / "sets.npz", **sets)
    return study


def grade(path: Path, sets: Any) -> dict[str, Any]:
    """Changed decisive answers per set, agreement on all crops and logit error (onnxruntime, this CPU)."""
    from edgecls.export.parity import onnx_logits
    from edgecls.export.quant.grading.evaluate import relative_error

    out: dict[str, Any] = {}
    for name in ("search", "holdout", "test"):
        x, ref, dec = sets[f"{name}_x"], sets[f"{name}_ref"], sets[f"{name}_dec"]
        logits = onnx_logits(path, x)
        same = logits.argmax(1) == ref.argmax(1)
        out[name] = {
            "decisive": int(dec.sum()),
            "changed_decisive": int((~same[dec]).sum()),
            "agreement_all": round(float(same.mean()), 4),
            "logit_error": round(relative_error(logits, ref), 6),
        }
    return out


def _timer() -> StageTimer:
    """The reconstruction's parts, timed (installed once; ``totals`` is reset per variant)."""
    from edgecls.export.quant.repairs import reconstruct
    from edgecls.export.quant.repairs.layer_fit import LayerFit
    from edgecls.export.quant.repairs.layer_tensors import GraphTensors

    timer = StageTimer()
    m = timer.wrap_method
    m(GraphTensors, "tensor", lambda self, name: "tensors (onnxruntime passes, dequantize)")
    m(LayerFit, "moments", "moments")
    m(LayerFit, "refit_bias", "bias re-fit")
    m(LayerFit, "error", "acceptance error")
    timer.wrap_function(reconstruct, "ordered_rounding", "solver")
    timer.wrap_function(reconstruct, "adaround", "solver")
    return timer


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """"ordered:threads=2,positions=16384" -> ("ordered", {"threads": 2, "positions": 16384})."""
    solver, _, rest = text.partition(":")
    fields: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        fields[key] = float(value) if "." in value else int(value) if value.lstrip("-").isdigit() else value
    return solver, fields


def run_variant(study: Path, text: str, busy: int, timer: StageTimer) -> dict[str, Any]:
    import onnx

    from edgecls.export.quant.repairs import layer_fit
    from edgecls.export.quant.repairs.reconstruct import ReconstructSettings, reconstruct_layers

    solver, fields = parse_variant(text)
    module_fields = {k: fields.pop(k) for k in list(fields) if k.isupper()}  # e.g. POSITIONS=16384
    for key, value in module_fields.items():
        setattr(layer_fit, key, value)
    settings = dataclasses.replace(ReconstructSettings(seconds=1e9), solver=solver, **fields)
    out = study / f"r-{text.replace(':', '_').replace(',', '_').replace('=', '-')}{'-busy' if busy else ''}.onnx"
    shutil.copy(study / "base.onnx", out)
    timer.totals = {}
    procs = []
    for core in range(busy):
        p = subprocess.Popen([sys.executable, "-c", BUSY])
        os.sched_setaffinity(p.pid, {core % (os.cpu_count() or 1)})
        procs.append(p)
    load0 = os.getloadavg()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        done = reconstruct_layers(out, onnx.load(str(study / "float_src.onnx")), np.load(study / "calib.npy"), settings)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        for p in procs:
            p.kill()
            p.wait()
    sets = np.load(study / "sets.npz")
    return {
        "variant": text,
        "busy_processes": busy,
        "settings": dataclasses.asdict(settings),
        "module": module_fields,
        "wall": round(wall, 1),
        "cpu": round(cpu, 1),
        "loadavg": {"start": load0, "end": os.getloadavg()},
        "parts": {r["path"][-1]: {"wall": r["wall"], "cpu": r["cpu"]} for r in timer.rows()},
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "summary": done.summary(),
        "graded": grade(out, sets),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--variant", action="append", default=[], help="SOLVER[:field=value,...] (repeatable)")
    ap.add_argument("--busy", type=int, default=0, help="busy processes beside each variant, one per core")
    ap.add_argument("--out", required=True, help="a JSON file; results are appended to it")
    args = ap.parse_args()
    study = prepare(Path(args.work))
    timer = _timer()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else []
    for text in args.variant:
        r = run_variant(study, text, args.busy, timer)
        results.append(r)
        out.write_text(json.dumps(results, indent=1) + "\n")
        g = r["graded"]
        print(
            f"{text} busy={args.busy}: {r['wall']} s wall, {r['cpu']} s CPU; changed decisive search "
            f"{g['search']['changed_decisive']}/{g['search']['decisive']}, held-out {g['holdout']['changed_decisive']}"
            f"/{g['holdout']['decisive']}, test {g['test']['changed_decisive']}/{g['test']['decisive']}; logit error "
            f"held-out {g['holdout']['logit_error']} test {g['test']['logit_error']}; sha {r['sha256'][:12]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
