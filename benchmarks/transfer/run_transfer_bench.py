"""Transfer learning on a small real-photo task: pretrained EfficientNet-Lite0 fine-tuned vs from scratch.

    flock /tmp/edgecls-cpu.lock python benchmarks/transfer/run_transfer_bench.py --work /tmp/transfer --epochs 8

The task (photo_task.py): 10 classes, 40 training + 10 validation crops per class from the left 60% of each of
scikit-image's sample photos, 30 test crops per class from the right 40% (never seen in training). Every run
is a real ``edgecls train`` process on the same split with the same epochs and batch size; its wall time and
CPU time (user + system of the process) are measured. Then the fine-tuned EfficientNet-Lite0 is exported with
``edgecls export RUN --quantize`` (int8 within the default 1-point budget on the validation split) and fp32
and int8 are evaluated on the test split through the runtime and timed with ``edgecls bench``.

Results: ``transfer_<cpu>_<isa>_ort<version>_<date>.json`` and ``.md`` beside this script, with the load
average at start and end (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_task import write_task  # noqa: E402

from edgecls.runtime.bench.env import collect_environment, environment_slug  # noqa: E402

EDGECLS = [sys.executable, "-m", "edgecls"]

#: name -> extra `edgecls train` arguments; all runs share the split, epochs, batch size and seed.
RUNS: dict[str, list[str]] = {
    "efficientnet_lite0 pretrained, BN frozen": ["--arch", "efficientnet_lite0", "--pretrained"],
    "mobilenetv2 from scratch": ["--arch", "mobilenetv2", "--input-size", "224"],
    "efficientnet_lite0 pretrained, BN re-estimated": [
        "--arch", "efficientnet_lite0", "--pretrained", "--batchnorm", "reestimate"
    ],  # fmt: skip
    "efficientnet_lite0 from scratch": ["--arch", "efficientnet_lite0", "--input-size", "224"],
    # What README's quick start recommends, on edgecls's own defaults (with --default-stopping).
    "efficientnet_lite0 pretrained, defaults": ["--arch", "efficientnet_lite0", "--pretrained"],
    "mobilenetv2 from scratch, defaults": ["--arch", "mobilenetv2"],
}
EXPORTED = "efficientnet_lite0 pretrained, BN frozen"


def timed(cmd: list[str], log: Path) -> dict[str, float]:
    """Run ``cmd`` to completion; -> wall seconds and the child's CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def train_run(
    name: str, extra: list[str], data: Path, work: Path, epochs: int, batch: int, default_stopping: bool
) -> dict[str, Any]:
    out = work / name.replace(" ", "_").replace(",", "").replace("-", "")
    stopping = [] if default_stopping else ["--patience", str(epochs)]  # else: no early stopping
    cmd = [*EDGECLS, "train", str(data), *extra, "--epochs", str(epochs), "--batch-size", str(batch),
           *stopping, "--out", str(out)]  # fmt: skip
    cost = timed(cmd, work / f"{out.name}.log")
    summary = json.loads((out / "summary.json").read_text())
    history = json.loads((out / "history.json").read_text())
    config = json.loads((out / "config.json").read_text())
    contract = json.loads((out / "contract.json").read_text())
    return {
        "command": " ".join(["edgecls", *cmd[3:]]),
        "run_dir": str(out),
        **cost,
        "test_top1": summary["test_top1"],
        "val_top1_best": summary["val_top1"],
        "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"],
        "val_acc_per_epoch": [round(h["val_acc"], 4) for h in history],
        "train_acc_per_epoch": [round(h["train_acc"], 4) for h in history],
        "recipe": {k: config[k] for k in ("pretrained", "head_epochs", "backbone_lr_scale", "batchnorm", "lr")},
        "input_size": contract["input_size"],
        "mean": contract["mean"],
        "pretrained": contract["provenance"].get("pretrained"),
    }


def export_and_measure(run_dir: Path, work: Path) -> dict[str, Any]:
    """`edgecls export RUN --quantize`, then fp32/int8 top-1 on the test split and batch-1 latency."""
    result: dict[str, Any] = {"export": timed([*EDGECLS, "export", run_dir_str := str(run_dir), "--quantize"],
                                              work / "export.log")}  # fmt: skip
    report = json.loads((run_dir / "export" / "export_report.json").read_text())
    result["quantization"] = report.get("quantization")
    result["export_log_tail"] = (work / "export.log").read_text().strip().splitlines()[-4:]
    for variant in ("model.onnx", "model.int8.onnx"):
        path = run_dir / "export" / variant
        if not path.is_file():
            result[variant] = {"missing": True}
            continue
        proc = subprocess.run([*EDGECLS, "eval", str(path), "--json"], capture_output=True, text=True, check=True)
        metrics = json.loads(proc.stdout.strip().splitlines()[-1])
        result[variant] = {"test_top1": metrics["top1"], "size_mb": round(path.stat().st_size / 1e6, 2)}
    bench_json = work / "bench.json"
    cmd = [*EDGECLS, "bench", *(str(run_dir / "export" / v) for v in ("model.onnx", "model.int8.onnx")
                                if (run_dir / "export" / v).is_file()),
           "--batch-size", "1", "--threads", "2", "--runs", "200", "--warmup", "20",
           "--json-file", str(bench_json)]  # fmt: skip
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    result["bench"] = json.loads(bench_json.read_text())
    rows = [r for r in result["bench"]["rows"] if r["engine"] == "onnxruntime" and not r["spin"]]
    result["latency_p50_ms"] = {r["variant"]: round(r["p50_ms"], 2) for r in rows}
    result["latency_p90_ms"] = {r["variant"]: round(r["p90_ms"], 2) for r in rows}
    result["run_dir"] = run_dir_str
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--runs", default=";".join(RUNS), help="';'-separated subset of: " + "; ".join(RUNS))
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--classes", type=int, default=10, help="the first N photos of photo_task.CLASSES")
    ap.add_argument("--per-class", default="40,10,30", help="train,val,test crops per class")
    ap.add_argument(
        "--default-stopping", action="store_true", help="edgecls's early stopping (else every run trains --epochs)"
    )
    ap.add_argument("--tag", default="", help="added to the results file name (e.g. small-val)")
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()
    env = collect_environment()
    args.work.mkdir(parents=True, exist_ok=True)
    n_train, n_val, n_test = (int(v) for v in args.per_class.split(","))
    task = write_task(args.work / "photos", n_train, n_val, n_test, classes=args.classes)
    results: dict[str, Any] = {
        "environment": {**env.__dict__, "load_average_start": os.getloadavg()},
        "task": task,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "early_stopping": "edgecls defaults" if args.default_stopping else "off (patience = epochs)",
        "runs": {},
    }
    isa = "vnni" if any("vnni" in f for f in env.isa) else ("avx2" if "avx2" in env.isa else env.machine)
    cpu, rest = environment_slug(env).split("_", 1)
    stem = args.out_dir / f"transfer{'_' + args.tag if args.tag else ''}_{cpu}_{isa}_{rest}"

    def save() -> None:  # after every step: an interrupted benchmark keeps what it measured
        results["environment"]["load_average_end"] = os.getloadavg()
        Path(f"{stem}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        Path(f"{stem}.md").write_text(markdown(results))

    for name in [n.strip() for n in args.runs.split(";") if n.strip()]:
        print(f"== {name}", flush=True)
        results["runs"][name] = train_run(name, RUNS[name], args.work / "photos", args.work, args.epochs,
                                          args.batch_size, args.default_stopping)  # fmt: skip
        print(json.dumps({k: results["runs"][name][k] for k in ("test_top1", "wall_s", "cpu_s")}), flush=True)
        save()
        if name == EXPORTED and not args.no_export:  # first, so the fine-tuned model is available early
            results["export"] = export_and_measure(Path(results["runs"][EXPORTED]["run_dir"]), args.work)
            print(json.dumps({k: results["export"][k] for k in ("model.onnx", "model.int8.onnx")}), flush=True)
            save()
    print(f"wrote {stem}.json/.md")


def markdown(r: dict[str, Any]) -> str:
    env = r["environment"]
    lines = [
        f"# Transfer learning: {env['cpu_model']}, onnxruntime {env['versions'].get('onnxruntime')}, "
        f"{env['timestamp'][:10]}",
        "",
        f"Task: {r['task']['source']}; {len(r['task']['classes'])} classes; per class "
        f"{r['task']['per_class']}; {r['task']['regions']}. At most {r['epochs']} epochs, early stopping "
        f"{r.get('early_stopping', 'off (patience = epochs)')}, batch {r['batch_size']}, "
        f"same split for every run. Load average at start {env['load_average_start']}, end "
        f"{env['load_average_end']} (shared 2-core machine).",
        "",
        "| run | test top-1 | best / run epochs | wall | CPU time | val top-1 per epoch |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, run in r["runs"].items():
        per_epoch = " ".join(f"{100 * v:.0f}" for v in run["val_acc_per_epoch"])
        lines.append(
            f"| {name} | {100 * run['test_top1']:.2f}% | {run['best_epoch']} / {len(run['val_acc_per_epoch'])} "
            f"| {run['wall_s']:.0f} s | {run['cpu_s']:.0f} s | {per_epoch} |"
        )
    ex = r.get("export")
    if ex:
        q = ex.get("quantization") or {}
        lines += [
            "",
            f"## `edgecls export RUN --quantize` of {EXPORTED}",
            "",
            f"- int8 budget (validation split, {q.get('metric')}): fp32 {q.get('fp32')}, int8 {q.get('int8')}, "
            f"drop {q.get('drop_points')} points (max {q.get('max_drop')}), budget met: {q.get('budget_met')}, "
            f"nodes kept in float: {len(q.get('nodes_kept_float') or [])}",
            f"- test top-1 through the runtime: fp32 {ex['model.onnx']}, int8 {ex['model.int8.onnx']}",
            f"- latency (`edgecls bench`, batch 1, 2 threads, 200 runs after 20 warm-up): p50 "
            f"{ex['latency_p50_ms']} ms, p90 {ex['latency_p90_ms']} ms",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
