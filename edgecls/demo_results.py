"""What the demo produces, shared by the pipeline (demo.py) and its report (demo_report.py): its options, one
summary row per model variant, the result, and the summary table and next commands printed at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DemoOptions:
    out: Path = Path("demo_out")
    data: str = "builtin:digits"
    arch: str = "mobilenetv2"
    epochs: int = 12
    seed: int = 0
    fp16: bool = True
    bench_runs: int = 200
    samples: int = 8


@dataclass
class VariantSummary:
    name: str  # "PyTorch eager", "ONNX fp32", ...
    file: str | None
    accuracy: float | None  # test top-1, fraction
    size_mb: float | None
    p50_ms: float | None
    speedup: float | None  # vs PyTorch eager p50
    note: str = ""


@dataclass
class DemoResult:
    out: Path
    run_dir: Path
    export_dir: Path
    variants: list[VariantSummary] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    report_md: Path | None = None
    report_html: Path | None = None


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def summary_rows(variants: list[VariantSummary]) -> list[list[str]]:
    return [
        [
            v.name,
            _fmt(None if v.accuracy is None else 100 * v.accuracy, ".2f"),
            _fmt(v.size_mb, ".2f"),
            _fmt(v.p50_ms, ".2f"),
            _fmt(v.speedup, ".2f") + ("x" if v.speedup else ""),
            v.note,
        ]
        for v in variants
    ]


SUMMARY_HEADER = ["variant", "top-1 %", "size MB", "p50 ms", "vs PyTorch", "note"]


def next_commands(result: DemoResult) -> list[str]:
    int8 = result.export_dir / "model.int8.onnx"
    return [
        f"edgecls run {int8} --camera 0            # live classification from a webcam",
        f"edgecls run {int8} {result.out / 'samples'} --json   # files/folders/videos/rtsp URLs",
        f"edgecls bench {result.export_dir} --batch 1,8 --threads 1,2 --plot bench.png",
        f"edgecls info {int8}",
        "edgecls train path/to/your_images --out runs/mine && edgecls export runs/mine --quantize",
    ]
