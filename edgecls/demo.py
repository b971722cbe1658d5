"""``edgecls demo``: the whole pipeline on built-in data, narrated, in a few minutes on a laptop CPU.

train -> evaluate -> export fp32 + int8 (+ fp16) with parity and the accuracy budget -> classify sample images
through the runtime -> bench the variants against PyTorch eager -> report (Markdown + HTML with plots) ->
summary table and the next commands to try. Each step calls the same library function as its command: the bench
step is :func:`edgecls.runtime.bench.benchmark.benchmark`, as ``edgecls bench`` runs it, with :func:`bench_options`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2

from edgecls.demo_results import DemoOptions, DemoResult, VariantSummary

if TYPE_CHECKING:
    from edgecls.runtime.bench.benchmark import BenchOptions
    from edgecls.runtime.bench.rows import BenchResult

_MARKER = ".edgecls-demo"


Narrate = Callable[[str, str], None]  # (step title, detail)


def _prepare_out(out: Path) -> None:
    """The demo owns its output folder: a previous demo there is replaced, anything else is refused."""
    from edgecls.runtime.errors import EdgeclsError

    if out.exists() and any(out.iterdir()):
        if not (out / _MARKER).exists():
            raise EdgeclsError(f"{out} exists and was not made by `edgecls demo`; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("made by edgecls demo; rerunning the demo replaces this folder\n")


def run_demo(options: DemoOptions, narrate: Narrate) -> DemoResult:
    from edgecls.training.config import TrainConfig
    from edgecls.training.train import train

    out = options.out
    _prepare_out(out)
    result = DemoResult(out=out, run_dir=out / "run", export_dir=out / "export")
    t = time.perf_counter()

    narrate(
        "1/6 Train",
        f"{options.arch} on {options.data} for up to {options.epochs} epochs: cross-entropy, "
        "AdamW, warm-up + cosine, augmentation, best checkpoint on validation accuracy.",
    )
    train(
        TrainConfig(
            data=options.data,
            arch=options.arch,
            epochs=options.epochs,
            out=str(result.run_dir),
            seed=options.seed,
        )
    )
    result.seconds["train"] = time.perf_counter() - t

    t = time.perf_counter()
    summary = json.loads((result.run_dir / "summary.json").read_text())
    narrate(
        "2/6 Evaluate",
        f"best checkpoint on the held-out test split: top-1 {100 * summary['test_top1']:.2f}% "
        f"on {summary['test_images']} images (confusion matrix in run/eval/).",
    )
    result.seconds["evaluate"] = time.perf_counter() - t

    t = time.perf_counter()
    narrate(
        "3/6 Export",
        "PyTorch -> ONNX fp32 (parity-checked against PyTorch), int8 QDQ within a 1-point "
        "accuracy budget" + (", fp16" if options.fp16 else "") + "; the preprocessing contract "
        "travels inside each file.",
    )
    from edgecls.export.export_run import ExportOptions, export_checkpoint
    from edgecls.export.quant.options import QuantizeOptions

    export_checkpoint(
        result.run_dir,
        # The demo always shows its int8 model; over budget it is marked in its contract and its report says so.
        ExportOptions(
            out_dir=str(result.export_dir), fp16=options.fp16, quantize=QuantizeOptions(allow_over_budget=True)
        ),
        log=lambda m: narrate("", m),
    )
    result.seconds["export"] = time.perf_counter() - t

    t = time.perf_counter()
    narrate(
        "4/6 Classify",
        "sample images through the runtime (onnxruntime + OpenCV, no torch) with the int8 model.",
    )
    result.samples = _classify_samples(result, options)
    result.seconds["classify"] = time.perf_counter() - t

    t = time.perf_counter()
    narrate("5/6 Bench", "latency of every variant against PyTorch eager, warm-up excluded, batch 1.")
    from edgecls.runtime.bench.benchmark import benchmark

    bench = benchmark(bench_options(result, options)).result
    result.seconds["bench"] = time.perf_counter() - t

    t = time.perf_counter()
    narrate("6/6 Report", "accuracy of every variant on the test split, plots and the summary table.")
    result.variants = _summarise(result, bench, options)
    from edgecls.demo_report import write_report, write_summary

    write_report(result, bench, options)
    result.seconds["report"] = time.perf_counter() - t
    write_summary(result, bench, options, out / "summary.json")
    return result


def _classify_samples(result: DemoResult, options: DemoOptions) -> list[dict[str, Any]]:
    from edgecls.data.load import load_data
    from edgecls.runtime.inference.classifier import Classifier

    splits = load_data(options.data, seed=options.seed)
    sample_dir = result.out / "samples"
    sample_dir.mkdir(exist_ok=True)
    clf = Classifier(result.export_dir / "model.int8.onnx", provider="cpu")
    step = max(1, len(splits.test) // options.samples)
    rows = []
    for i in range(0, step * options.samples, step):
        truth = splits.classes[splits.test.label(i)]
        path = sample_dir / f"{len(rows):02d}_true-{truth}.png"
        cv2.imwrite(str(path), splits.test.load(i))  # a real file, decoded again by the runtime below
        top = clf.predict(path, top_k=1)[0]
        rows.append(
            {
                "file": str(path.relative_to(result.out)),
                "truth": truth,
                "predicted": top.label,
                "score": top.score,
                "correct": top.label == truth,
            }
        )
    return rows


def bench_options(result: DemoResult, options: DemoOptions) -> BenchOptions:
    """The demo's bench as ``edgecls bench`` options: every exported variant on onnxruntime CPU, batch 1, the
    session's own thread count, ``--bench-runs`` timed runs, against PyTorch eager on the run's checkpoint (no
    OpenCV DNN row, no images: the summary table compares speed; accuracy comes from evaluating each file)."""
    from edgecls.runtime.bench.benchmark import BenchOptions

    variants = ("model.onnx", "model.int8.onnx", "model.fp16.onnx")
    return BenchOptions(
        models=tuple(p for p in (result.export_dir / v for v in variants) if p.exists()),
        threads=(None,),
        runs=options.bench_runs,
        opencv=False,
        checkpoint=result.run_dir / "best.pt",
        run_split=False,
    )


def _summarise(result: DemoResult, bench: BenchResult, options: DemoOptions) -> list[VariantSummary]:
    from edgecls.evaluation.evaluate import EvalOptions, evaluate

    summary = json.loads((result.run_dir / "summary.json").read_text())
    from edgecls.runtime.bench.rows import ENGINE_ORT, ENGINE_TORCH

    rows = [r for r in bench.rows if r.ok]
    torch_row = next((r for r in rows if r.engine == ENGINE_TORCH), None)
    base = torch_row.p50_ms if torch_row else None

    def speed(p50: float | None) -> float | None:
        return base / p50 if base and p50 else None

    variants = []
    if torch_row:
        variants.append(
            VariantSummary(
                "PyTorch eager",
                "run/best.pt",
                summary["test_top1"],
                (result.run_dir / "best.pt").stat().st_size / 2**20,
                torch_row.p50_ms,
                1.0,
            )
        )
    for name, fname in (
        ("ORT fp32", "model.onnx"),
        ("ORT int8", "model.int8.onnx"),
        ("ORT fp16", "model.fp16.onnx"),
    ):
        path = result.export_dir / fname
        if not path.exists():
            continue
        ev = evaluate(EvalOptions(path, options.data, split="test", seed=options.seed, provider="cpu"))
        row = next((r for r in rows if r.engine == ENGINE_ORT and Path(r.model).name == fname), None)
        note = "for GPU/NPU" if "fp16" in fname else ""
        variants.append(
            VariantSummary(
                name,
                f"export/{fname}",
                ev.metrics.top1,
                path.stat().st_size / 2**20,
                row.p50_ms if row else None,
                speed(row.p50_ms if row else None),
                note,
            )
        )
    return variants
