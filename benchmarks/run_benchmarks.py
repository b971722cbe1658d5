"""Reproduce edgecls's published benchmark: its own architectures as fp32 / fp16 / int8 ONNX on onnxruntime,
against PyTorch eager and OpenCV DNN, batch 1 and 8, 1 and 2 intra-op threads, repeated to show stability.

    flock /tmp/edgecls-cpu.lock python benchmarks/run_benchmarks.py            # the published run
    python benchmarks/run_benchmarks.py --quick                                 # a 1-minute smoke run

What it measures, per architecture (default: mobilenetv2 - the default edge model - resnet18,
mobilenetv2_050; all at 224 px):

- Models. A trained model is used where one exists (``--trained`` run/export dir, or the mobilenetv2 224 px
  run the quantization study left under benchmarks/quantization/): its accuracy on the held-out test split
  of the data it was trained on is reported beside its speed. Other architectures get random weights whose
  BatchNorm statistics are calibrated on real images (so activations, and hence int8 ranges, look like a
  trained network's); their accuracy is n/a. Both are exported by edgecls's own pipeline
  (``edgecls.export.export_run.export_checkpoint``: fp32 + parity, fp16, int8 QDQ; random-weight models skip the
  accuracy budget, which means nothing for them, and take the ISA's first int8 recipe).
- Measurement: :func:`edgecls.runtime.bench.benchmark.benchmark`, what ``edgecls bench`` runs, one call per
  architecture (:func:`family_options`) - every configuration in a fresh process, warm-up excluded, a fixed time
  budget per configuration (capped run count), OpenCV DNN on the fp32 model and PyTorch eager on the source
  checkpoint in the same table.
- Repeats: the whole measurement ``--repeats`` times (default 3). Published rows are each configuration's
  median-p50 repeat; the stability section gives, per ratio, the spread (max - min) / median over repeats.

Outputs: ``benchmarks/results/bench_<cpu>_ort<version>_<date>.{json,md,png}`` (JSON = the ``edgecls bench``
document + ``repeats``, ``stability`` and ``headline``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from repeat_summary import Family, headline, headline_markdown, median_rows, stability, stability_markdown

from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.bench.benchmark import BenchOptions, benchmark
from edgecls.runtime.bench.env import collect_environment, environment_slug
from edgecls.runtime.bench.plot import write_plot
from edgecls.runtime.bench.report import print_report, to_markdown
from edgecls.runtime.bench.rows import BenchResult, BenchRow, compute_ratios
from edgecls.runtime.bench.targets import model_targets

HERE = Path(__file__).resolve().parent
DEFAULT_ARCHS = ("mobilenetv2", "resnet18", "mobilenetv2_050")
DATA_SPEC = "builtin:shapes"


# --------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------
def _shapes_inputs(input_size: int, n: int, contract: Any) -> np.ndarray:
    """``float32[n, 3, S, S]``: builtin:shapes training images through the runtime's preprocessing."""
    from edgecls.data.load import load_data
    from edgecls.runtime.inference.preprocess import preprocess_batch

    train = load_data(DATA_SPEC, seed=0).train
    idx = np.linspace(0, len(train) - 1, n).astype(int)
    return preprocess_batch([train.load(int(i)) for i in idx], contract)


def random_checkpoint(arch: str, input_size: int, out: Path, bn_images: int = 256) -> Path:
    """Random weights + BatchNorm statistics measured on real images, saved as an edgecls checkpoint."""
    import torch
    from torch import nn

    from edgecls.data.builtin import SHAPE_CLASSES
    from edgecls.models.registry import arch_kwargs, build_model
    from edgecls.runtime.contract.model_contract import ModelContract
    from edgecls.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    contract = ModelContract(
        labels=SHAPE_CLASSES,
        input_size=(input_size, input_size),
        provenance={"arch": arch, "weights": "random, BatchNorm calibrated"},
    )
    model = build_model(arch, len(SHAPE_CLASSES), input_size)
    inputs = _shapes_inputs(input_size, bn_images, contract)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over all calibration batches
    model.train()
    with torch.no_grad():
        for chunk in np.array_split(inputs, max(1, len(inputs) // 32)):
            model(torch.from_numpy(chunk))
    model.eval()
    return save_checkpoint(
        out,
        {
            "arch": arch,
            "arch_kwargs": arch_kwargs(arch),
            "contract": contract.to_dict(),
            "model_state": model.state_dict(),
            "epoch": 0,
            "metrics": {},
            "data": {"spec": DATA_SPEC, "seed": 0, "val_fraction": 0.15, "test_fraction": 0.15},
        },
    )


def export_variants(checkpoint: Path, out_dir: Path, random_weights: bool, quick: bool) -> Path:
    """fp32 + fp16 + int8 through edgecls's export pipeline (skipped when the directory is complete).

    Random weights: images from builtin:shapes, no accuracy budget (it means nothing for them). Trained:
    the run's own train (calibration) and val (budget) splits, default budget.
    """
    from edgecls.export.export_run import ExportOptions, export_checkpoint
    from edgecls.export.quant.options import Int8Images, QuantizeOptions

    if all((out_dir / n).is_file() for n in ("model.onnx", "model.fp16.onnx", "model.int8.onnx")):
        return out_dir
    spec = DATA_SPEC if random_weights else None
    options = ExportOptions(
        out_dir=str(out_dir),
        fp16=True,
        quantize=QuantizeOptions(max_drop=100.0) if random_weights else QuantizeOptions(),
        data=spec,
        int8_images=Int8Images(
            calib=spec, val=spec, calib_images=64 if quick else 300, val_images=64 if quick else 300
        ),
        parity_images=8 if quick else 32,
    )
    export_checkpoint(checkpoint, options, log=lambda m: print(f"  export: {m}", flush=True))
    return out_dir


def find_trained_export(root: Path, arch: str, input_size: int) -> Path | None:
    """An export dir under ``root`` whose fp32 model is a trained ``arch`` at ``input_size`` px."""
    from edgecls.export.metadata import read_contract_file

    for onnx_path in sorted(root.rglob("model.onnx")) if root.is_dir() else []:
        contract = read_contract_file(onnx_path)
        if contract is None or contract.input_size != (input_size, input_size):
            continue
        prov = contract.provenance
        if prov.get("arch") == arch and "random" not in str(prov.get("weights", "")):
            return onnx_path.parent
    return None


def write_test_split(checkpoint: Path, out: Path) -> Path:
    """The held-out test split of the data the checkpoint was trained on, as a class-folder tree."""
    import cv2

    from edgecls.export.run_data import data_ref_of, load_splits
    from edgecls.training.checkpoint import load_checkpoint

    if out.is_dir() and any(out.rglob("*.png")):
        return out
    ckpt = load_checkpoint(checkpoint)
    ref = data_ref_of(ckpt.raw, ckpt.path)
    if ref is None:
        raise SystemExit(f"{checkpoint}: cannot tell which data it was trained on")
    test = load_splits(ref).test
    for i in range(len(test)):
        folder = out / test.classes[test.label(i)]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:05d}.png"), test.load(i))
    return out


def trained_family(arch: str, source: Path, args: argparse.Namespace) -> Family:
    """A trained model: an export dir is measured as it is; a run dir / checkpoint is copied into the work
    dir and exported there by edgecls's pipeline with the default int8 accuracy budget (its own splits)."""
    from edgecls.runtime.bench.baselines.torch_eager import find_checkpoint
    from edgecls.runtime.file_digest import sha256_file
    from edgecls.training.checkpoint import resolve_checkpoint_path

    source = Path(source)
    export_dir = next((d for d in (source, source / "export") if (d / "model.onnx").is_file()), None)
    if export_dir is not None:
        ckpt = find_checkpoint(model_targets([export_dir / "model.onnx"])[0])
    else:
        original = resolve_checkpoint_path(source)
        work = args.work / f"{arch}_{source.name}_trained"
        ckpt = work / "best.pt"
        if not ckpt.is_file() or sha256_file(ckpt) != sha256_file(original):
            work.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(work / "export", ignore_errors=True)
            shutil.copy2(original, ckpt)
        export_dir = export_variants(ckpt, work / "export", random_weights=False, quick=args.quick)
    size = model_targets([export_dir / "model.onnx"])[0].contract.input_size[0]
    test_dir = write_test_split(ckpt, args.work / f"{arch}_{size}_{source.name}_test") if ckpt else None
    print(f"{arch}: trained model {export_dir} (checkpoint {ckpt}, test images {test_dir})", flush=True)
    return Family(arch, size, export_dir, ckpt, True, test_dir)


def prepare_families(args: argparse.Namespace) -> list[Family]:
    """Random-weight models for ``args.archs`` at ``args.input_size``; a trained model of the same arch and
    size replaces its random twin, one of another size is measured in addition (for its accuracy)."""
    trained = args.trained or find_trained_export(HERE / "quantization", "mobilenetv2", args.input_size)
    extra = trained_family("mobilenetv2", trained, args) if trained else None
    families = []
    for arch in args.archs:
        if extra and extra.arch == arch and extra.input_size == args.input_size:
            families.append(extra)
            extra = None
            continue
        work = args.work / f"{arch}_{args.input_size}"
        ckpt = work / "best.pt"
        if not ckpt.is_file():
            print(f"{arch}: random weights, calibrating BatchNorm on {DATA_SPEC}", flush=True)
            random_checkpoint(arch, args.input_size, ckpt, bn_images=64 if args.quick else 256)
        export_variants(ckpt, work / "export", random_weights=True, quick=args.quick)
        families.append(Family(arch, args.input_size, work / "export", ckpt, False))
    return families + ([extra] if extra else [])


# --------------------------------------------------------------------------------------------------------
# Measuring (one pass over every family; repeats and their summary: repeat_summary.py)
# --------------------------------------------------------------------------------------------------------
def family_options(fam: Family, args: argparse.Namespace) -> BenchOptions:
    """``edgecls bench`` options for one family: its variants with both baselines (PyTorch eager on its
    checkpoint), compared on its test images (trained models; random weights have none)."""
    return BenchOptions(
        models=tuple(sorted(fam.export_dir.glob("model*.onnx"))),
        batches=tuple(args.batches),
        threads=tuple(args.threads),
        runs=args.max_runs,
        time_budget=args.time_budget,
        warmup=args.warmup,
        data_dir=fam.test_dir,
        checkpoint=fam.checkpoint,
        isolate=not args.in_process,
        run_split=False,
    )


def measure_once(families: list[Family], args: argparse.Namespace, repeat: int) -> BenchResult:
    """Every family through :func:`edgecls.runtime.bench.benchmark.benchmark`, the rows in one result."""
    rows: list[BenchRow] = []
    result: BenchResult | None = None
    for fam in families:
        t0 = time.perf_counter()

        def progress(done: int, total: int, what: str, arch: str = fam.arch) -> None:
            if done < total:
                print(f"  [repeat {repeat + 1}] {arch} {done + 1}/{total} {what}", flush=True)

        result = benchmark(family_options(fam, args), progress).result
        print(f"  [repeat {repeat + 1}] {fam.arch}: {len(result.rows)} rows in {time.perf_counter() - t0:.0f} s")
        rows += result.rows
    assert result is not None
    compute_ratios(rows)
    return BenchResult(result.environment, rows, result.settings)


# --------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", default=None, help=f"default {','.join(DEFAULT_ARCHS)} (--quick: mobilenetv2_050)")
    ap.add_argument("--input-size", type=int, default=None, help="default 224 (--quick: 64)")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--time-budget", type=float, default=2.0, help="seconds of timed runs per configuration")
    ap.add_argument("--max-runs", type=int, default=300, help="cap on timed runs per configuration")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    ap.add_argument(
        "--trained", type=Path, default=None, help="trained mobilenetv2 run or export directory (any input size)"
    )
    ap.add_argument(
        "--work",
        type=Path,
        default=HERE.parent / "runs" / "benchmarks",
        help="exported models and test images (runs/ is not committed)",
    )
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--quick", action="store_true", help="smoke run: mobilenetv2_050 at 64 px, 0.3 s, 1 repeat")
    ap.add_argument("--in-process", action="store_true",
                    help="measure in this process, as `edgecls bench --in-process` (cold start, peak RSS accumulate)")
    args = ap.parse_args(argv)
    if args.quick:
        args.time_budget = 0.3
        args.out = args.work / "quick_results"
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.archs = args.archs or ("mobilenetv2_050" if args.quick else ",".join(DEFAULT_ARCHS))
    args.input_size = args.input_size or (64 if args.quick else 224)
    args.archs = [a for a in args.archs.split(",") if a]
    args.batches = [int(b) for b in args.batches.split(",")]
    args.threads = [int(t) for t in args.threads.split(",")]
    return args


def write_results(
    args: argparse.Namespace,
    families: list[Family],
    repeats: list[BenchResult],
    loads: list[dict[str, Any]],
    seconds: float,
) -> Path:
    """The JSON/Markdown/PNG of the repeats measured so far (rewritten after every repeat)."""
    rows = median_rows(repeats)
    result = BenchResult(collect_environment(), rows, repeats[0].settings)
    stab = stability(repeats)
    head = headline(rows, families, stab)
    base = args.out / f"bench_{environment_slug(result.environment)}"
    doc = result.to_dict()
    doc["settings"] = {
        **doc["settings"],
        "repeats": len(repeats),
        "archs": args.archs,
        "input_size": args.input_size,
        "command": " ".join(["python", "benchmarks/run_benchmarks.py", *args.argv]),
        "seconds": round(seconds),
    }
    doc.update(
        headline=head,
        stability=stab,
        load_average=loads,
        repeats=[[r.to_dict(samples=False) for r in rep.rows] for rep in repeats],
        families=[
            {
                "arch": f.arch,
                "input_size": f.input_size,
                "export_dir": str(f.export_dir),
                "checkpoint": str(f.checkpoint),
                "trained": f.trained,
                "test_dir": str(f.test_dir) if f.test_dir else None,
            }
            for f in families
        ],
    )
    atomic_write_text(f"{base}.json", json.dumps(doc, indent=2) + "\n")
    md = [
        "# edgecls benchmark",
        "",
        headline_markdown(head),
        stability_markdown(stab, len(repeats)),
        "## All rows (median repeat)",
        "",
        to_markdown(result),
    ]
    atomic_write_text(f"{base}.md", "\n".join(md))
    write_plot(result, f"{base}.png", rows=[r for r in rows if r.batch == 1])
    print(headline_markdown(head))
    print(stability_markdown(stab, len(repeats)), flush=True)
    return base


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    t0 = time.perf_counter()
    families = prepare_families(args)
    repeats: list[BenchResult] = []
    loads: list[dict[str, Any]] = []
    for i in range(args.repeats):
        loads.append({"repeat": i + 1, "load_average_before": list(os.getloadavg())})
        repeats.append(measure_once(families, args, i))
        loads[-1]["load_average_after"] = list(os.getloadavg())
        base = write_results(args, families, repeats, loads, time.perf_counter() - t0)
        print(f"wrote {base}.json/.md/.png after repeat {i + 1}/{args.repeats}", flush=True)
    print_report(BenchResult(collect_environment(), median_rows(repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
