"""The quantization report: what was made, how, and what it measured (JSON for tools, Markdown for people).

One frozen :class:`QuantReport` is built once, when every step has run, from the steps' own results (the trials,
the repairs' notes, the choice, the speed step, the held-out grade); ``to_dict`` is ``quantization_report.json``
and ``summary`` the part other reports copy (``export_report.json``, the benchmarks' results); the files are
written by ``report_files``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgecls.export.quant.grading.holdout import Grade, GradedImages
from edgecls.export.quant.grading.image_sets import ImageList
from edgecls.export.quant.recipes import QuantRecipe, TargetPlan
from edgecls.export.quant.search.frontier import frontier
from edgecls.export.quant.search.speed_step import SpeedStep
from edgecls.export.quant.search.speed_vs_fp32 import SpeedVsFp32
from edgecls.export.quant.search.trials import Trial
from edgecls.runtime.accuracy_budget import within_budget

#: The headline fields other reports (export_report.json, benchmark results) copy from this one.
SUMMARY_KEYS = (
    "recipe", "metric", "fp32", "int8", "drop_points", "max_drop", "budget_met", "status", "interval_points",
    "nodes_kept_float", "size_bytes", "latency", "speedup_p50", "speed", "target", "search", "fusion", "verdict",
    "written", "test", "qat",
)  # fmt: skip


@dataclass(frozen=True)
class ImageCounts:
    source: str
    images: int
    skipped: int

    @classmethod
    def of(cls, images: ImageList) -> ImageCounts:
        return cls(images.source, len(images), len(images.skipped))


@dataclass(frozen=True)
class ValidationSplit:
    """The validation images and how they were split: the search part chooses, the held-out part grades."""

    images: ImageCounts
    search: int
    holdout: int
    split: str
    decisive_search: int | None  # None: labelled, or graded on every image
    decisive_holdout: int | None

    @classmethod
    def of(cls, validation: ImageList, search: GradedImages, holdout: GradedImages) -> ValidationSplit:
        split = f"seeded disjoint split: {search.images.source}; {holdout.images.source}"
        counts = (None if part.decisive is None else part.decisive.count for part in (search, holdout))
        return cls(ImageCounts.of(validation), len(search), len(holdout), split, *counts)

    @property
    def agreement_on(self) -> str:
        return "all" if self.decisive_holdout is None else "decisive"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.images.__dict__, "search_images": self.search, "holdout_images": self.holdout,
            "split": self.split, "agreement_on": self.agreement_on, "decisive_search_images": self.decisive_search,
            "decisive_holdout_images": self.decisive_holdout,
        }  # fmt: skip


@dataclass(frozen=True)
class QuantReport:
    fp32_model: str
    int8_model: str  # "" when nothing was written (over budget without --allow-over-budget)
    plan: TargetPlan  # the device the file is made for and this host
    pick: Trial  # the chosen trial, as measured on the search images
    nodes_kept_float: tuple[str, ...]  # read back from the written graph (the one count of float nodes)
    calibration: ImageCounts
    validation: ValidationSplit
    grade: Grade  # the pick on the held-out images: accuracy, fp32's, the verdict
    speed: SpeedVsFp32  # the one timing against fp32 that latency, speedup_p50 and the advice use
    size_bytes: dict[str, int]
    preprocess: str  # how the float graph was prepared (quant_pre_process)
    trials: tuple[Trial, ...]
    fusion: dict[str, Any]  # conv_counts.fusion_record of the pick
    repairs: tuple[str, ...] = ()  # per repair: kept or not, and what it measured (repair_step.py)
    choice: tuple[str, ...] = ()  # how the pick was made among the trials (search/choice.py)
    sensitivity: tuple[tuple[str, float], ...] = ()  # (node, logit error with only it in float), most first
    speed_step: SpeedStep | None = None  # what the speed step tried (None: it did not run)
    warnings: tuple[str, ...] = ()
    frontier_plot: str | None = None
    test: dict[str, Any] | None = None  # a run's test split: reported, never used to choose
    qat: dict[str, Any] | None = None  # what quantization-aware fine-tuning did (None: it did not run)
    seconds: float = 0.0

    @property
    def written(self) -> bool:
        return bool(self.int8_model)

    @property
    def metric(self) -> str:
        return self.grade.verdict.metric

    @property
    def drop_points(self) -> float:
        return round(self.grade.verdict.drop_points, 3)

    @property
    def budget_met(self) -> bool:
        """The measured held-out drop is within budget (``status`` says whether the images can tell)."""
        return self.grade.verdict.budget_met

    @property
    def status(self) -> str:
        return self.grade.verdict.status

    @property
    def recipe(self) -> QuantRecipe:
        return self.pick.recipe

    def to_dict(self) -> dict[str, Any]:
        v, trials = self.grade.verdict, [t.to_dict() for t in self.trials]
        return {
            "fp32_model": self.fp32_model,
            "int8_model": self.int8_model,
            "isa": self.plan.host.to_dict(),
            "recipe": self.recipe.to_dict(len(self.nodes_kept_float)),
            "metric": self.metric,
            "calibration": self.calibration.__dict__,
            "validation": self.validation.to_dict(),
            "fp32": self.grade.fp32.to_dict(),
            "int8": self.grade.int8.to_dict(),
            "drop_points": self.drop_points,
            "max_drop": v.max_drop,
            "budget_met": self.budget_met,
            "nodes_kept_float": list(self.nodes_kept_float),
            "size_bytes": self.size_bytes,
            "latency": self.speed.latency(),
            "speedup_p50": self.speed.speedup,
            "speed": self.speed.to_dict(),
            "slower_than_fp32": self.speed.slower,
            "preprocess": self.preprocess,
            "trials": trials,
            "sensitivity_top": [{"node": n, "relative_error": e} for n, e in self.sensitivity[:10]],
            "warnings": list(self.warnings),
            "seconds": self.seconds,
            "target": self.plan.to_dict(),
            "search": {
                "images": self.validation.search, "drop_points": round(self.pick.drop_points, 3),
                "budget_met": within_budget(self.pick.drop_points, v.max_drop), **self.pick.accuracy.to_dict(),
            },  # fmt: skip
            "fusion": self.fusion,
            "repairs": list(self.repairs),
            "frontier": frontier(trials),
            "frontier_plot": self.frontier_plot,
            "written": self.written,
            "verdict": v.line(),
            "status": v.status,
            "interval_points": [round(x, 3) for x in v.interval_points],
            "choice": list(self.choice),
            "speed_step": [] if self.speed_step is None else self.speed_step.notes,
            "node_speed": [] if self.speed_step is None else self.speed_step.kinds,
            "test": self.test,
            "qat": self.qat,
        }

    def summary(self) -> dict[str, Any]:
        d = self.to_dict()
        return {k: d[k] for k in SUMMARY_KEYS}

    def headline(self) -> str:
        """The verdict with what was written: the line the command prints last."""
        speed = f"{self.speed.line()}; {len(self.nodes_kept_float)} nodes in float"
        if self.speed.slower:
            speed += "; slower than fp32 beyond noise: keep fp32"
        verdict = self.grade.verdict.line()
        if self.status == "within budget":
            return f"int8 within budget: {verdict} ({speed})"
        if self.status == "unverified":
            why = "within budget as measured; the held-out images cannot tell"
            return f"int8 UNVERIFIED ({why}): {verdict} ({speed})"
        where = (
            f"written anyway to {self.int8_model} (--allow-over-budget), marked in its contract"
            if self.written
            else "nothing written at the int8 name (--allow-over-budget writes it, marked)"
        )
        return f"int8 OVER BUDGET: {verdict} ({speed}); {where}"

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

