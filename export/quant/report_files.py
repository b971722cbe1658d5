"""The quantization report as files: ``quantization_report.json`` (``QuantReport.to_dict``) and
``quantization_report.md``, the same facts for people."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgecls.export.quant.grading.decisive import DESCRIPTION
from edgecls.export.quant.grading.evaluate import Accuracy
from edgecls.export.quant.report import QuantReport
from edgecls.runtime.atomic import atomic_write_text

REPORT_JSON = "quantization_report.json"
REPORT_MD = "quantization_report.md"


def write_report(report: QuantReport, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    out = Path(out_dir)
    j = atomic_write_text(out / REPORT_JSON, json.dumps(report.to_dict(), indent=2) + "\n")
    m = atomic_write_text(out / REPORT_MD, to_markdown(report))
    return j, m


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _decisive_note(report: QuantReport) -> str:
    v = report.validation
    if v.agreement_on != "decisive":
        return ""
    return (
        f", graded on the images fp32 decides: {v.decisive_search} search and {v.decisive_holdout} held-out images "
        f"({DESCRIPTION})"
    )


def _conv_line(fusion: dict) -> str:
    """``conv_counts.ConvCounts.line`` of the pick (kept in ``fusion``)."""
    line = fusion.get("line") or f"{fusion.get('int8_convs')} int8 / {fusion.get('float_convs')} float convs"
    return f"{line} ({100 * fusion.get('int8_fraction', 0):.0f}% int8)"


def _summary_lines(r: QuantReport) -> list[str]:
    host, plan = r.plan.host, r.plan
    interval = " to ".join(f"{x:+.1f}" for x in r.grade.verdict.interval_points) or "-"
    return [
        "# Quantization report",
        "",
        f"**{r.headline()}**",
        "",
        f"- fp32 model: `{r.fp32_model}`",
        f"- int8 model: `{r.int8_model}`",
        f"- CPU: {host.isa} ({', '.join(host.flags) or 'no special flags'}), {host.machine}",
        f"- method: {r.recipe.describe(len(r.nodes_kept_float))} - {r.recipe.reason}",
        f"- calibration: {r.calibration.images} images from {r.calibration.source}",
        f"- validation: {r.validation.images.images} images from {r.validation.images.source} "
        f"(metric: {r.metric}{_decisive_note(r)})",
        f"- graph preparation: {r.preprocess}",
        f"- target: {plan.target} ({plan.note})",
        f"- search images: drop {r.pick.drop_points:+.2f} pts on {r.validation.search} images; held-out images "
        f"(graded, never used to choose): drop {r.drop_points:+.2f} pts on {r.validation.holdout} images (95% "
        f"interval of the drop {interval})",
        *([f"- {line}"] if (line := r.test_line()) else []),
        *(f"- choice: {note}" for note in r.choice),
        f"- speed against fp32 (the one timing the verdict uses): {r.speed.line()}: {r.speed.advice()}",
        f"- onnxruntime's optimised graph: {_conv_line(r.fusion)}",
        *(f"- {note}" for note in r.repairs),
    ]


def _accuracy_rows(r: QuantReport) -> list[str]:
    rows = [
        "",
        "| variant | top-1 | agreement with fp32 (all held-out) | on the images fp32 decides | size | "
        "p50 latency (batch 1) |",
        "|---|---|---|---|---|---|",
    ]
    latency = r.speed.latency()
    accuracies: dict[str, Accuracy] = {"fp32": r.grade.fp32, "int8": r.grade.int8}
    for name, acc in accuracies.items():
        rows.append(
            f"| {name} | {_pct(acc.top1)} | {_pct(acc.agreement)} | {_pct(acc.decisive_agreement)} | "
            f"{r.size_bytes[name] / 1e6:.2f} MB | {latency[name]['p50_ms']:.2f} ms |"
        )
    kept = ", ".join(f"`{n}`" for n in r.nodes_kept_float) or "none"
    return rows + ["", f"Nodes kept in float ({len(r.nodes_kept_float)}): {kept}", ""]


def _trial_rows(r: QuantReport) -> list[str]:
    rows = [
        "## Variants measured",
        "",
        "Each trial on the search images; * = on the accuracy/speed frontier; p50: the trial's own pass (it "
        "orders the frontier; speed against fp32 is the interleaved timing above).",
        "",
        "| recipe | score | drop (pts) | agreement | p50 ms | int8 convs |",
        "|---|---|---|---|---|---|",
    ]
    d = r.to_dict()
    on_front = {t["recipe"] for t in d["frontier"]}
    for t, trial in zip(d["trials"], r.trials, strict=True):
        mark = " *" if t["recipe"] in on_front else ""
        rows.append(
            f"| {t['recipe']}{mark} | {_pct(trial.accuracy.score)} | {t['drop_points']:+.2f} | "
            f"{_pct(t['agreement'])} | {t['latency_p50_ms']:.2f} | {100 * t['int8_conv_fraction']:.0f}% |"
        )
    if r.frontier_plot:
        rows += ["", f"![accuracy/speed frontier]({Path(r.frontier_plot).name})"]
    if r.sensitivity:
        rows += ["", "## Most sensitive nodes (logit error with only that node in float; lower = more sensitive)", ""]
        rows += [f"- `{node}`: {error:.4g}" for node, error in r.sensitivity[:10]]
    return rows


def _node_speed_lines(r: QuantReport) -> list[str]:
    if r.speed_step is None:
        return []
    lines = [
        "",
        "## Where the time goes (onnxruntime's profiler on this CPU, median per call)",
        "",
        "| node kind | int8 ms | fp32 ms | convs (slower in int8) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {k['kind']} | {k['int8_us'] / 1000:.3f} | {k['fp32_us'] / 1000:.3f} | "
        + (f"{k['convs']} ({k['int8_slower']}) |" if k["convs"] else "- |")
        for k in r.speed_step.kinds
    ]
    return lines + [""] + [f"- speed step: {note}" for note in r.speed_step.notes]


def _qat_lines(r: QuantReport) -> list[str]:
    t = r.qat
    if not t:
        return []
    lines = [
        "",
        "## Quantization-aware fine-tuning",
        "",
        f"{t['epochs']} epoch(s) at lr {t['lr']:.2g} on {t['train_images']} training images, simulating "
        f"{t['simulated']}: {t['folded_batchnorms']} BatchNorm layers folded, {t['weight_points']} weight / "
        f"{t['activation_points']} activation fake-quant points, {t['seconds']:.0f} s. Its trial is a row of the "
        "table above (QAT-fine-tuned weights), kept only when it measured better.",
        "",
        "| epoch | loss | fake-int8 train accuracy | lr | seconds |",
        "|---|---|---|---|---|",
    ]
    return lines + [
        f"| {h['epoch'] + 1} | {h['loss']:.4f} | {100 * h['acc']:.1f}% | {h['lr']:.2g} | {h['seconds']:.0f} |"
        for h in t["history"]
    ]


def to_markdown(report: QuantReport) -> str:
    lines = _summary_lines(report) + _accuracy_rows(report) + _trial_rows(report)
    lines += _node_speed_lines(report) + _qat_lines(report)
    if report.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"
