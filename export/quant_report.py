"""The quantization report: what was made, how, and what it measured (JSON for tools, Markdown for people)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
    "nodes_kept_float",
    "size_bytes",
    "latency",
    "speedup_p50",
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
    budget_met: bool
    nodes_kept_float: list[str]
    size_bytes: dict[str, int]
    latency: dict[str, dict[str, float]]  # variant -> {p50_ms, p90_ms, runs}
    speedup_p50: float
    preprocess: str
    trials: list[dict[str, Any]]
    sensitivity_top: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        d = self.to_dict()
        return {k: d[k] for k in SUMMARY_KEYS}

    def verdict(self) -> str:
        what = "top-1" if self.metric == "top1" else "disagreement with fp32"
        if self.budget_met:
            return (
                f"int8 within budget: {what} drop {self.drop_points:.2f} pts <= {self.max_drop:g} "
                f"({len(self.nodes_kept_float)} nodes in float), {self.speedup_p50:.2f}x faster than fp32"
            )
        return (
            f"BUDGET NOT MET: the best int8 model loses {self.drop_points:.2f} pts of {what} "
            f"(budget {self.max_drop:g}); it was written anyway ({len(self.nodes_kept_float)} nodes kept "
            f"in float, {self.speedup_p50:.2f}x vs fp32). Keep using the fp32 model where accuracy matters."
        )

    def to_markdown(self) -> str:
        def pct(x: float | None) -> str:
            return "-" if x is None else f"{100 * x:.2f}%"

        lines = [
            "# Quantization report",
            "",
            f"**{self.verdict()}**",
            "",
            f"- fp32 model: `{self.fp32_model}`",
            f"- int8 model: `{self.int8_model}`",
            f"- CPU: {self.isa.get('isa')} ({', '.join(self.isa.get('flags', [])) or 'no special flags'}), "
            f"{self.isa.get('machine')}",
            f"- method: {self.recipe.get('description')} - {self.recipe.get('reason')}",
            f"- calibration: {self.calibration.get('images')} images from {self.calibration.get('source')}",
            f"- validation: {self.validation.get('images')} images from {self.validation.get('source')} "
            f"(metric: {self.metric})",
            f"- graph preparation: {self.preprocess}",
            "",
            "| variant | top-1 | agreement with fp32 | size | p50 latency (batch 1) |",
            "|---|---|---|---|---|",
        ]
        for name in ("fp32", "int8"):
            acc = getattr(self, name)
            lines.append(
                f"| {name} | {pct(acc.get('top1'))} | {pct(acc.get('agreement'))} | "
                f"{self.size_bytes[name] / 1e6:.2f} MB | {self.latency[name]['p50_ms']:.2f} ms |"
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
            "| recipe | score | drop (pts) | agreement |",
            "|---|---|---|---|",
        ]
        for t in self.trials:
            score = t.get("top1") if t.get("top1") is not None else t.get("agreement")
            lines.append(
                f"| {t['recipe']} | {pct(score)} | {t['drop_points']:+.2f} | {pct(t['agreement'])} |"
            )
        if self.sensitivity_top:
            lines += [
                "",
                "## Most sensitive nodes (logit error with only that node in float; lower = more sensitive)",
                "",
            ]
            lines += [f"- `{s['node']}`: {s['relative_error']:.4g}" for s in self.sensitivity_top]
        if self.warnings:
            lines += ["", "## Warnings", ""] + [f"- {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


def write_report(report: QuantReport, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    out = Path(out_dir)
    j = atomic_write_text(out / REPORT_JSON, json.dumps(report.to_dict(), indent=2) + "\n")
    m = atomic_write_text(out / REPORT_MD, report.to_markdown())
    return j, m
