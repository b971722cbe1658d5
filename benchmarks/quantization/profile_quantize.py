"""Where one ``edgecls quantize`` call spends its wall and CPU time, stage by stage (issue 32: the 150 s goal).

Runs the real command in this process (``edgecls.cli.main`` with the given arguments) with every stage of the int8
pipeline wrapped by ``stage_timer.StageTimer``: image decoding and preprocessing, fp32 logits, the decisive-image
computation, calibration statistics, each trial (quantize, bias correction, reconstruction and its parts, grading
and timing), the sensitivity ranking, the float-node search, the choice's paired timing, the speed step, the final
grade, the report. Writes ``--out`` .json (every stage path: calls, inclusive and own wall / CPU seconds, the load
average before and after) and .md (the same as a table). Time it alone on the cores:

    flock /tmp/edgecls-cpu.lock chrt -r 1 python benchmarks/quantization/profile_quantize.py --out P -- \\
        W/effnet-lite0/model.onnx --calib W/recon-calibration --val W/recon-validation --out Q --allow-over-budget

(W: a folder ``run_recon_bench.py`` built: the Lite0 export and its photo crops.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from stage_timer import StageTimer  # noqa: E402

Q = "edgecls.export.quant"
#: label -> "module:function", wrapped in its module and wherever an edgecls module imported it by name
FUNCTIONS = {
    "quantize_file": f"{Q}.quantize_file:quantize_file",
    "load + decode images": f"{Q}.grading.image_sets:load_int8_images",
    "quantize_model": f"{Q}.pipeline:quantize_model",
    "preprocess": "edgecls.runtime.inference.preprocess:preprocess_batch",
    "onnx_logits (own session)": "edgecls.export.parity:onnx_logits",
    "decisive images": f"{Q}.grading.decisive:decisive_parts",
    "noise draws + JPEG re-encode": f"{Q}.grading.decisive:invisible_changes",
    "session run": "edgecls.runtime.inference.batched_inference:session_outputs",
    "session build": "edgecls.runtime.providers.session:create_session",
    "activation statistics": f"{Q}.qdq.activation_stats:collect_stats",
    "per-tensor range choice": f"{Q}.qdq.range_choice:choose_ranges",
    "equalisation": f"{Q}.repairs.equalize:equalize",
    "recon: image count": f"{Q}.repairs.reconstruct:_image_count",
    "recon: ordered rounding": f"{Q}.repairs.reconstruct:ordered_rounding",
    "recon: adaround": f"{Q}.repairs.reconstruct:adaround",
    "recon: write layer": f"{Q}.repairs.reconstruct:_write",
    "grade + time trial": f"{Q}.search.trial_eval:measure_trial",
    "trial session build": f"{Q}.search.trial_eval:_session",
    "latency loop": f"{Q}.grading.evaluate:session_latency_ms",
    "fused op counts": f"{Q}.grading.fused_graph:count_fused_ops",
    "conv counts": f"{Q}.grading.conv_counts:conv_counts",
    "float nodes read back": f"{Q}.grading.fused_graph:float_compute_nodes",
    "sensitivity ranking": f"{Q}.search.float_nodes:sensitivity",
    "float-node search": f"{Q}.search.float_nodes:keep_nodes_float",
    "choose": f"{Q}.search.choice:choose",
    "paired timing": f"{Q}.search.paired_timing:time_ratio",
    "speed step": f"{Q}.search.speed_step:faster_int8",
    "node profile": f"{Q}.search.node_profile:profile_nodes",
    "speed: quantize float candidate": f"{Q}.search.speed_step:runs_float",
    "final grade (held-out)": f"{Q}.grading.holdout:grade",
    "measure accuracy": f"{Q}.grading.evaluate:measure_accuracy",
    "speed vs fp32": f"{Q}.search.speed_vs_fp32:speed_vs_fp32",
    "fusion record": f"{Q}.grading.conv_counts:fusion_record",
    "time-cap check": f"{Q}.reconstruct_cap:time_cap_warning",
    "publish": f"{Q}.pipeline:_publish",
    "frontier plot": f"{Q}.search.frontier:plot_frontier",
    "write report": f"{Q}.report_files:write_report",
}
#: label -> "module:Class.method"
METHODS = {
    "quant_pre_process": f"{Q}.qdq.static_quantizer:StaticQuantizer._pre_process",
    "quantize": f"{Q}.qdq.static_quantizer:StaticQuantizer.quantize",
    "bias correction": f"{Q}.qdq.static_quantizer:StaticQuantizer._bias_correct",
    "reconstruction": f"{Q}.qdq.static_quantizer:StaticQuantizer._reconstruct",
    "recon: graph setup": f"{Q}.repairs.layer_tensors:GraphTensors.__init__",
    "recon: layer setup": f"{Q}.repairs.layer_fit:LayerFit.__init__",
    "recon: acceptance error": f"{Q}.repairs.layer_fit:LayerFit.error",
    "recon: moments": f"{Q}.repairs.layer_fit:LayerFit.moments",
    "recon: bias re-fit": f"{Q}.repairs.layer_fit:LayerFit.refit_bias",
}


def _install(timer: StageTimer) -> None:
    """Wrap the stages (every module imported first, so that every module that imported a stage by name gets
    the wrapper)."""
    import importlib

    import onnxruntime.quantization as ortq

    import edgecls.cli.quantize_cmd  # noqa: F401

    modules = {t.partition(":")[0] for t in (*FUNCTIONS.values(), *METHODS.values())}
    loaded = {name: importlib.import_module(name) for name in sorted(modules)}
    for label, target in FUNCTIONS.items():
        module, _, name = target.partition(":")
        timer.wrap_function(loaded[module], name, label)
    for label, target in METHODS.items():
        module, _, dotted = target.partition(":")
        cls, _, name = dotted.partition(".")
        timer.wrap_method(getattr(loaded[module], cls), name, label)
    # labels that name the call
    trials = importlib.import_module(f"{Q}.search.trials")
    timer.wrap_method(trials.TrialBench, "try_recipe", lambda self, recipe: f"trial {recipe.name}")
    tensors = loaded[f"{Q}.repairs.layer_tensors"].GraphTensors
    timer.wrap_method(tensors, "tensor", lambda self, name: f"recon: tensors {'int8' if _qdq(self) else 'fp32'}")
    also = ("edgecls", "onnxruntime.quantization")
    timer.wrap_function(ortq, "quantize_static", "onnxruntime quantize_static", also=also)


def _qdq(tensors: Any) -> set[str]:
    """Names of the int8 graph's quantized weights (empty for the fp32 graph): tells the two GraphTensors apart."""
    cached = getattr(tensors, "_stage_qdq", None)
    if cached is None:
        cached = {n.input[0] for n in tensors.model.graph.node if n.op_type == "DequantizeLinear"}
        tensors._stage_qdq = cached
    return cached


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# Stages of one `edgecls quantize` call ({r['cpu']}, {r['cores']} cores, {r['date']})",
        "",
        f"`edgecls quantize {' '.join(r['argv'])}` (exit {r['exit_status']}), run with `{r['run_as']}`. "
        f"Whole call: {r['wall']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU (user + sys of every thread); load "
        f"average {r['loadavg_start'][0]:.1f} at the start, {r['loadavg_end'][0]:.1f} at the end.",
        "",
        "By stage, own seconds summed over every place it ran (CPU counts every thread of the process):",
        "",
        "| stage | calls | own wall s | own CPU s |",
        "|---|---:|---:|---:|",
    ]
    by_stage: dict[str, list[float]] = {}
    for row in r["stages"]:
        t = by_stage.setdefault(row["path"][-1], [0, 0.0, 0.0])
        t[0] += row["calls"]
        t[1] += row["self_wall"]
        t[2] += row["self_cpu"]
    for name, (calls, wall, cpu) in sorted(by_stage.items(), key=lambda kv: -kv[1][2]):
        lines.append(f"| {name} | {calls:.0f} | {wall:.1f} | {cpu:.1f} |")
    lines += [
        "",
        "Nested: inclusive seconds; own = without the stages listed under it.",
        "",
        "| stage | calls | wall s | CPU s | own wall s | own CPU s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in r["stages"]:
        indent = "&nbsp;&nbsp;" * (len(row["path"]) - 1)
        lines.append(
            f"| {indent}{row['path'][-1]} | {row['calls']} | {row['wall']:.1f} | {row['cpu']:.1f} | "
            f"{row['self_wall']:.1f} | {row['self_cpu']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="results path without extension (.json and .md are written)")
    ap.add_argument("--run-as", default="", help="how the call was started (flock / chrt), for the record")
    ap.add_argument("--depth", type=int, default=7)
    ap.add_argument("argv", nargs=argparse.REMAINDER, help="-- then the arguments of `edgecls quantize`")
    args = ap.parse_args()
    argv = [a for a in args.argv if a != "--"]
    timer = StageTimer(max_depth=args.depth)
    _install(timer)
    from edgecls.cli import main as cli_main
    from edgecls.runtime.bench.env import collect_environment

    load0, w0, r0 = os.getloadavg(), time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    sys.argv = ["edgecls", "quantize", *argv]
    status = 0
    try:
        cli_main()
    except SystemExit as e:
        status = int(e.code or 0)
    wall, r1 = time.perf_counter() - w0, resource.getrusage(resource.RUSAGE_SELF)
    env = collect_environment()
    result = {
        "cpu": env.cpu_model,
        "cores": os.cpu_count(),
        "date": env.timestamp[:10],
        "argv": argv,
        "run_as": args.run_as or "python",
        "exit_status": status,
        "wall": round(wall, 1),
        "cpu_seconds": round((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), 1),
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
        "stages": timer.rows(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps(result, indent=1) + "\n")
    Path(f"{out}.md").write_text(markdown(result))
    print(f"wrote {out}.md and .json", flush=True)


if __name__ == "__main__":
    main()
