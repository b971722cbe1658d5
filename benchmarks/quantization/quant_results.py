"""The quantization study's results file: one Markdown page and its JSON, named after the CPU and the date.

``write_results`` writes both (atomically; ``merge`` adds the cases to today's file of an earlier run);
``markdown`` renders the page: per case, every variant's accuracy, fused graph and latency, then edgecls's own
reports (how each run picked its model) and its frontier plots.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from study_env import THREADS, log

from edgecls.export.quant.grading.verdict import wilson_interval
from edgecls.runtime.atomic import atomic_write_text


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
            "| method | top-1 | agreement with fp32 | on the crops fp32 decides | logit rel. error | "
            "int8 / float convs (fused graph) | p50 ms | speed vs fp32 |",
            "|---|---|---|---|---|---|---|---|",
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
            decides = f"{pct(t.get('decisive_agreement'))} of {t.get('decisive_images', '-')}"
            lines.append(
                f"| {label} | {pct(t.get('top1'))} | {agree} | {decides} | {t['relative_error']:.4f} | {conv} | "
                f"{speed} |"
            )
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
