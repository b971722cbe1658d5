"""The quantization report: what was made, how, and what it measured (JSON for tools, Markdown for people)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgecls.export.quant.decisive import DESCRIPTION
from edgecls.export.quant.evaluate import graded_score
from edgecls.runtime.atomic import atomic_write_text

REPORT_JSON = "quantization_report.json"
REPORT_MD = "quantization_report.md"
#: The headline fields other reports (export_report.json, benchmark results) copy from this one.
SUMMARY_KEYS = (
    "recipe",
    "metric",
    "fp32",
    "int8",
    "drop_points",
    "max_drop",
    "budget_met",
    "status",
    "interval_points",
    "nodes_kept_float",
    "size_bytes",
    "latency",
    "speedup_p50",
    "speed",
    "target",
    "search",
    "fusion",
    "verdict",
    "written",
    "test",
)


@dataclass
class QuantReport:
    fp32_model: str
    int8_model: str
    isa: dict[str, Any]
    recipe: dict[str, Any]  # the chosen QuantRecipe.to_dict()
    metric: str  # "top1" (labelled validation images) or "agreement" (unlabelled)
    calibration: dict[str, Any]  # source, images, skipped
    validation: dict[str, Any]  # source, images, skipped
    fp32: dict[str, Any]  # top1 / agreement / relative_error
    int8: dict[str, Any]
    drop_points: float
    max_drop: float
    budget_met: bool  # the measured held-out drop is within budget (``status`` says whether the images can tell)
    nodes_kept_float: list[str]
    size_bytes: dict[str, int]
    latency: dict[str, dict[str, float]]  # variant -> {p50_ms, p90_ms, runs, spread}, from ``speed``'s timing
    speedup_p50: float  # ``speed["speedup"]``: fp32's time over int8's, median of the interleaved rounds
    preprocess: str
    trials: list[dict[str, Any]]
    sensitivity_top: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    target: dict[str, Any] = field(default_factory=dict)  # recipes.TargetPlan.to_dict()
    search: dict[str, Any] = field(default_factory=dict)  # the chosen trial on the search images
    fusion: dict[str, Any] = field(default_factory=dict)  # fused_graph.fusion_counts of the chosen model
    bias_correction: str = ""
    refinements: list[str] = field(default_factory=list)  # equalisation / per-tensor calibration comparisons
    frontier: list[dict[str, Any]] = field(default_factory=list)
    frontier_plot: str | None = None
    written: bool = True  # False: over budget, nothing at the int8 path
    verdict: str = ""  # verdict.Verdict.line(): the measured change, its 95% interval, and why unverified
    status: str = ""  # "within budget" | "unverified" | "over budget" (verdict.py)
    interval_points: list[float] = field(default_factory=list)  # 95% interval of the held-out drop
    choice: list[str] = field(default_factory=list)  # how the search picked among its trials (budget_search)
    slower_than_fp32: bool = False  # the pick runs slower than fp32 beyond noise (then fp32 is the better file)
    # speed_vs_fp32.SpeedVsFp32.to_dict(): the one timing against fp32 that latency, speedup_p50 and the advice use
    speed: dict[str, Any] = field(default_factory=dict)
    # The speed step (speed_step.py): what it tried, and per node kind the pick's int8 time vs fp32's (profiler)
    speed_step: list[str] = field(default_factory=list)
    node_speed: list[dict[str, Any]] = field(default_factory=list)
    # The run's test split (export of a trained run): int8 against fp32 there, reported, never used to choose.
    test: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        d = self.to_dict()
        return {k: d[k] for k in SUMMARY_KEYS}

    def headline(self) -> str:
        """The verdict with what was written: the line the command prints last."""
        speed = f"{self.speed_line()}; {len(self.nodes_kept_float)} nodes in float"
        if self.slower_than_fp32:
            speed += "; slower than fp32 beyond noise: keep fp32"
        if self.status == "within budget":
            return f"int8 within budget: {self.verdict} ({speed})"
        if self.status == "unverified":
            why = "within budget as measured; the held-out images cannot tell"
            return f"int8 UNVERIFIED ({why}): {self.verdict} ({speed})"
        where = (
            f"written anyway to {self.int8_model} (--allow-over-budget), marked in its contract"
            if self.written
            else "nothing written at the int8 name (--allow-over-budget writes it, marked)"
        )
        return f"int8 OVER BUDGET: {self.verdict} ({speed}); {where}"

    def speed_line(self) -> str:
        """The speed-up with the timings it rests on (``speed_vs_fp32.SpeedVsFp32.line``, kept in ``speed``)."""
        return str(self.speed.get("line") or f"{self.speedup_p50:.2f}x fp32's speed")

    def test_line(self) -> str | None:
        """int8 against fp32 on the run's test split, or None without one."""
        if not self.test:
            return None
        t = self.test
        what = "top-1" if t["metric"] == "top1" else "agreement with fp32"
        fp32 = "" if t.get("fp32_top1") is None else f" ({100 * t['fp32_top1']:.2f}% -> {100 * t['int8_top1']:.2f}%)"
        lo, hi = t["interval_points"]
        return (
            f"on the test split ({t['images']} images, reported, never used to choose): {what} changed by "
            f"{-t['drop_points']:+.1f} points{fp32} (95% interval of the drop {lo:+.1f} to {hi:+.1f})"
        )

    def _decisive_note(self) -> str:
        if self.validation.get("agreement_on") != "decisive":
            return ""
        return (
            f", graded on the images fp32 decides: {self.validation.get('decisive_search_images')} search and "
            f"{self.validation.get('decisive_holdout_images')} held-out images ({DESCRIPTION})"
        )

    def _conv_line(self) -> str:
        """``conv_counts.ConvCounts.line`` of the pick (kept in ``fusion``)."""
        f = self.fusion
        line = f.get("line") or f"{f.get('int8_convs')} int8 / {f.get('float_convs')} float convs"
        return f"{line} ({100 * f.get('int8_fraction', 0):.0f}% int8)"

    def _interval(self) -> str:
        return " to ".join(f"{x:+.1f}" for x in self.interval_points) or "-"

    def to_markdown(self) -> str:
        def pct(x: float | None) -> str:
            return "-" if x is None else f"{100 * x:.2f}%"

        lines = [
            "# Quantization report",
            "",
            f"**{self.headline()}**",
            "",
            f"- fp32 model: `{self.fp32_model}`",
            f"- int8 model: `{self.int8_model}`",
            f"- CPU: {self.isa.get('isa')} ({', '.join(self.isa.get('flags', [])) or 'no special flags'}), "
            f"{self.isa.get('machine')}",
            f"- method: {self.recipe.get('description')} - {self.recipe.get('reason')}",
            f"- calibration: {self.calibration.get('images')} images from {self.calibration.get('source')}",
            f"- validation: {self.validation.get('images')} images from {self.validation.get('source')} "
            f"(metric: {self.metric}{self._decisive_note()})",
            f"- graph preparation: {self.preprocess}",
            f"- target: {self.target.get('target')} ({self.target.get('note')})",
            f"- search images: drop {self.search.get('drop_points', 0):+.2f} pts on {self.search.get('images')} "
            f"images; held-out images (graded, never used to choose): drop {self.drop_points:+.2f} pts on "
            f"{self.validation.get('holdout_images')} images (95% interval of the drop "
            f"{self._interval()})",
            *([f"- {line}"] if (line := self.test_line()) else []),
            *(f"- choice: {note}" for note in self.choice),
            *([f"- speed against fp32 (the one timing the verdict uses): {self.speed_line()}: {self.speed['advice']}"]
              if self.speed else []),
            f"- onnxruntime's optimised graph: {self._conv_line()}",
            f"- {self.bias_correction}",
            *(f"- {note}" for note in self.refinements),
            "",
            "| variant | top-1 | agreement with fp32 (all held-out) | on the images fp32 decides | size | "
            "p50 latency (batch 1) |",
            "|---|---|---|---|---|---|",
        ]
        for name in ("fp32", "int8"):
            acc = getattr(self, name)
            lines.append(
                f"| {name} | {pct(acc.get('top1'))} | {pct(acc.get('agreement'))} | "
                f"{pct(acc.get('decisive_agreement'))} | {self.size_bytes[name] / 1e6:.2f} MB | "
                f"{self.latency[name]['p50_ms']:.2f} ms |"
            )
        lines += [
            "",
            f"Nodes kept in float ({len(self.nodes_kept_float)}): "
            + (", ".join(f"`{n}`" for n in self.nodes_kept_float) or "none"),
            "",
        ]
        lines += [
            "## Variants measured",
            "",
            "Each trial on the search images; * = on the accuracy/speed frontier; p50: the trial's own pass (it "
            "orders the frontier; speed against fp32 is the interleaved timing above).",
            "",
            "| recipe | score | drop (pts) | agreement | p50 ms | int8 convs |",
            "|---|---|---|---|---|---|",
        ]
        on_front = {t["recipe"] for t in self.frontier}
        for t in self.trials:
            score = graded_score(t)
            mark = " *" if t["recipe"] in on_front else ""
            lines.append(
                f"| {t['recipe']}{mark} | {pct(score)} | {t['drop_points']:+.2f} | {pct(t['agreement'])} | "
                f"{t.get('latency_p50_ms', 0):.2f} | {100 * t.get('int8_conv_fraction', 0):.0f}% |"
            )
        if self.frontier_plot:
            lines += ["", f"![accuracy/speed frontier]({Path(self.frontier_plot).name})"]
        if self.sensitivity_top:
            lines += [
                "",
                "## Most sensitive nodes (logit error with only that node in float; lower = more sensitive)",
                "",
            ]
            lines += [f"- `{s['node']}`: {s['relative_error']:.4g}" for s in self.sensitivity_top]
        lines += self._node_speed_lines()
        if self.warnings:
            lines += ["", "## Warnings", ""] + [f"- {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


    def _node_speed_lines(self) -> list[str]:
        if not self.node_speed and not self.speed_step:
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
            for k in self.node_speed
        ]
        return lines + [""] + [f"- speed step: {note}" for note in self.speed_step]


def write_report(report: QuantReport, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    out = Path(out_dir)
    j = atomic_write_text(out / REPORT_JSON, json.dumps(report.to_dict(), indent=2) + "\n")
    m = atomic_write_text(out / REPORT_MD, report.to_markdown())
    return j, m
