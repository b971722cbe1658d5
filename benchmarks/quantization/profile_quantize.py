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


def _install(timer: StageTimer) -> None:
    """Wrap the stages (imports first, so that every module that imported a stage by name gets the wrapper)."""
    import onnxruntime.quantization as ortq

    import edgecls.cli.quantize_cmd  # noqa: F401
    import edgecls.export.quant.quantize_file as qfile
    from edgecls.export import parity
    from edgecls.export.quant import pipeline, reconstruct_cap, report_files
    from edgecls.export.quant.build import activation_stats, range_choice
    from edgecls.export.quant.build.static_quantizer import StaticQuantizer
    from edgecls.export.quant.grading import conv_counts, decisive, evaluate, fused_graph, holdout, image_sets
    from edgecls.export.quant.repairs import equalize, reconstruct
    from edgecls.export.quant.repairs.layer_fit import LayerFit
    from edgecls.export.quant.repairs.layer_tensors import GraphTensors
    from edgecls.export.quant.search import (
        choice,
        float_nodes,
        frontier,
        node_profile,
        paired_timing,
        speed_step,
        speed_vs_fp32,
        trial_eval,
    )
    from edgecls.export.quant.search.trials import TrialBench
    from edgecls.runtime.inference import batched_inference, preprocess
    from edgecls.runtime.providers import session

    f, m = timer.wrap_function, timer.wrap_method
    f(qfile, "quantize_file", "quantize_file")
    f(image_sets, "load_int8_images", "load + decode images")
    f(pipeline, "quantize_model", "quantize_model")
    f(preprocess, "preprocess_batch", "preprocess")
    f(parity, "onnx_logits", "onnx_logits (own session)")
    f(decisive, "decisive_parts", "decisive images")
    f(decisive, "invisible_changes", "noise draws + JPEG re-encode")
    f(batched_inference, "session_outputs", "session run")
    f(session, "create_session", "session build")
    m(StaticQuantizer, "_pre_process", "quant_pre_process")
    f(activation_stats, "collect_stats", "activation statistics")
    f(range_choice, "choose_ranges", "per-tensor range choice")
    f(equalize, "equalize", "equalisation")
    m(TrialBench, "try_recipe", lambda self, recipe: f"trial {recipe.name}")
    m(StaticQuantizer, "quantize", "quantize")
    f(ortq, "quantize_static", "onnxruntime quantize_static", also=("edgecls", "onnxruntime.quantization"))
    m(StaticQuantizer, "_bias_correct", "bias correction")
    m(StaticQuantizer, "_reconstruct", "reconstruction")
    f(reconstruct, "_image_count", "recon: image count")
    m(GraphTensors, "__init__", "recon: graph setup")
    m(GraphTensors, "tensor", lambda self, name: f"recon: tensors {'int8' if _qdq(self) else 'fp32'}")
    m(LayerFit, "__init__", "recon: layer setup")
    m(LayerFit, "error", "recon: acceptance error (whole maps)")
    m(LayerFit, "moments", "recon: moments")
    f(reconstruct, "ordered_rounding", "recon: ordered rounding")
    f(reconstruct, "adaround", "recon: adaround")
    m(LayerFit, "refit_bias", "recon: bias re-fit (whole maps)")
    f(reconstruct, "_write", "recon: write layer")
    f(trial_eval, "measure_trial", "grade + time trial")
    f(trial_eval, "_session", "trial session build")
    f(evaluate, "session_latency_ms", "latency loop")
    f(fused_graph, "count_fused_ops", "fused op counts")
    f(conv_counts, "conv_counts", "conv counts")
    f(fused_graph, "float_compute_nodes", "float nodes read back")
    f(float_nodes, "sensitivity", "sensitivity ranking")
    f(float_nodes, "keep_nodes_float", "float-node search")
    f(choice, "choose", "choose")
    f(paired_timing, "time_ratio", "paired timing")
    f(speed_step, "faster_int8", "speed step")
    f(node_profile, "profile_nodes", "node profile")
    f(speed_step, "runs_float", "speed: quantize float candidate")
    f(holdout, "grade", "final grade (held-out)")
    f(evaluate, "measure_accuracy", "measure accuracy")
    f(speed_vs_fp32, "speed_vs_fp32", "speed vs fp32")
    f(conv_counts, "fusion_record", "fusion record")
    f(reconstruct_cap, "time_cap_warning", "time-cap check")
    f(pipeline, "_publish", "publish")
    f(frontier, "plot_frontier", "frontier plot")
    f(report_files, "write_report", "write report")


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
