"""Post-training int8 set aside while a learned int8 (QAT, distillation) is tried against it.

Both learning steps first run the post-training search, move its files to ``OUT/ptq/`` so the learned model can
take the normal names, and end with one verdict that puts the two side by side. This module is that shared part.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgecls.export.quant.pipeline import FRONTIER_PLOT
from edgecls.export.quant.report import REPORT_JSON, REPORT_MD, QuantReport, write_report

PTQ_DIR = "ptq"


def move_ptq_files(report: QuantReport, out_dir: Path, int8_name: str) -> Path:
    """Post-training's report (and its int8 model, if one was written) -> OUT/ptq/; the report follows its files."""
    ptq = out_dir / PTQ_DIR
    ptq.mkdir(parents=True, exist_ok=True)
    for name in (REPORT_JSON, REPORT_MD, FRONTIER_PLOT, int8_name):
        if (out_dir / name).exists():
            os.replace(out_dir / name, ptq / name)
    if report.frontier_plot:
        report.frontier_plot = str(ptq / FRONTIER_PLOT)
    if report.written:
        report.int8_model = str(ptq / int8_name)
    write_report(report, ptq)
    return ptq


def report_side(report: QuantReport) -> dict[str, Any]:
    """One side of the comparison as the JSON reports keep it."""
    return {**report.summary(), "holdout_images": report.validation.get("holdout_images")}


def compared_verdict(step: str, ptq: QuantReport, learned: QuantReport | None, published: str | None = None) -> str:
    """The one-line verdict of post-training vs ``step`` ("QAT", "learning"); ``published`` names what was kept."""
    if learned is None:
        return f"post-training int8: {ptq.verdict}; no {step} needed"
    gained = ptq.drop_points - learned.drop_points
    state = "within budget" if learned.budget_met else "still OVER BUDGET"
    text = (
        f"{step} int8 {state}: {learned.verdict}; post-training: {ptq.verdict}; {step} "
        f"{'recovered' if gained >= 0 else 'lost'} {abs(gained):.1f} points"
    )
    return text if published is None else f"{text}; published: {published}"
