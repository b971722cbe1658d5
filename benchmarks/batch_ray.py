"""Images/s of ``edgecls batch --ray local`` vs ``edgecls batch`` (in-process) vs ``edgecls run FOLDER``.

The three commands classify the same folder of real photos with the same model on the same cores, each as a
fresh process (as a user runs them), interleaved over the repeats so load drifts hit all three alike:

    edgecls run MODEL FOLDER --json > /dev/null
    edgecls batch MODEL FOLDER --out OUT
    edgecls batch MODEL FOLDER --out OUT --ray local        (starts a one-machine Ray cluster itself)

Per command and repeat: wall time of the whole process (start-up, Ray cluster start and shutdown included)
and the job time the command itself reports (listing + classification + writing; for --ray without the
cluster's start), and the CPU seconds of its whole process tree (see _run_counting_cpu).
images/s = images / time. Published: medians over the repeats with (min-max).

Each command also runs on a quarter of the folder, so fixed costs (process and cluster start, actor start,
model loads) separate from the per-image rate: marginal images/s = (N - N/4) / (median time at N - median
time at N/4), the rate a job of millions of images runs at; fixed = time at N/4 - (N/4) / marginal rate.

Model: MobileNetV2 width 1.0, 224 px, random weights with real BN statistics, fp32 (the default edge model;
see runtime_overhead.py). Images: 640x480 JPEG crops of scikit-image's bundled photos.

    flock /tmp/edgecls-cpu.lock python benchmarks/batch_ray.py [--images N] [--repeats R] [--quick]

Writes ``benchmarks/results/batch_ray_<cpu>_<isa>_ort<version>_ray<version>_<date>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_overhead import RESULTS, export_mobilenetv2, write_photos  # noqa: E402

_BATCH_LINE = re.compile(r"(\d+) image\(s\), (\d+) error\(s\) in ([0-9.]+) s")
_RUN_LINE = re.compile(r"(\d+) result\(s\), (\d+) error\(s\).* in ([0-9.]+) s")


def _edgecls() -> list[str]:
    exe = Path(sys.executable).with_name("edgecls")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "edgecls"]


def _run_counting_cpu(cmd: list[str], err: Path) -> tuple[int, float]:
    """Run ``cmd``; returns (exit status, CPU seconds of its whole process tree).

    The tree (the command, and for --ray the GCS, raylet, agents and worker processes under it) is sampled
    every 0.1 s and each process's last user + system time is summed: the CPU a job costs, which on a
    shared, overloaded box is a steadier figure than its wall time (a command with more busy processes gets
    a larger share of an oversubscribed CPU). Slightly low: a process's last 0.1 s is not seen.
    """
    import psutil

    last: dict[tuple[int, float], float] = {}
    with open(err, "w") as f:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=f)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                tree = []
            for p in tree:
                try:
                    t = p.cpu_times()
                    last[(p.pid, p.create_time())] = t.user + t.system
                except psutil.Error:
                    pass
            time.sleep(0.1)
    return proc.returncode, sum(last.values())


def _measure(name: str, cmd: list[str], images: int, out: Path | None) -> dict:
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
    err = Path(tempfile.gettempdir()) / f"batch_ray_{os.getpid()}.err"
    t0 = time.perf_counter()
    returncode, cpu_s = _run_counting_cpu(cmd, err)
    wall = time.perf_counter() - t0
    stderr = err.read_text(errors="replace")
    err.unlink()
    proc = subprocess.CompletedProcess(cmd, returncode, None, stderr)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    m = (_RUN_LINE if name == "run" else _BATCH_LINE).search(last)
    if proc.returncode != 0 or m is None or int(m.group(1)) != images:
        raise SystemExit(f"{name} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    job = float(m.group(3))
    return {"wall_s": round(wall, 3), "job_s": round(job, 3), "cpu_s": round(cpu_s, 2),
            "cpu_ms_per_image": round(cpu_s / images * 1e3, 2), "wall_images_per_s": round(images / wall, 2),
            "job_images_per_s": round(images / job, 2), "load_average": [round(x, 2) for x in os.getloadavg()]}


def _median_spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2)}


def _isa(flags: list[str]) -> str:
    for flag in ("avx512_vnni", "avx_vnni", "avx512f", "avx2", "asimd"):
        if flag in flags:
            return flag.replace("_", "")
    return "baseline"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=800)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="120 images, 1 repeat (a smoke run, not for publishing)")
    args = ap.parse_args()
    if args.quick:
        args.images, args.repeats = 120, 1
    import ray

    from edgecls.runtime.bench.env import collect_environment

    env = collect_environment()
    edgecls = _edgecls()
    bs = ["--batch-size", str(args.batch_size)]
    names = ("run", "batch", "batch --ray local")
    small = args.images // 4
    runs: dict[str, list[dict]] = {name: [] for name in names}
    runs_small: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        model = str(export_mobilenetv2(d / "mobilenetv2_224.onnx"))
        folder, folder_small = d / "photos", d / "photos_small"
        paths = write_photos(folder, args.images)
        folder_small.mkdir()
        for p in paths[:small]:
            os.link(p, folder_small / p.name)
        out = d / "out"

        def argv(name: str, images: Path) -> list[str]:
            return {
                "run": ["run", model, str(images), "--json", *bs],
                "batch": ["batch", model, str(images), "--out", str(out), *bs],
                "batch --ray local": ["batch", model, str(images), "--out", str(out), "--ray", "local", *bs],
            }[name]

        for _ in range(args.repeats):
            for name in names:
                target = None if name == "run" else out
                runs[name].append(_measure(name, [*edgecls, *argv(name, folder)], args.images, target))
                print(name, args.images, runs[name][-1], flush=True)
                runs_small[name].append(_measure(name, [*edgecls, *argv(name, folder_small)], small, target))
                print(name, small, runs_small[name][-1], flush=True)
    summary = {
        name: {key: _median_spread([r[key] for r in rs]) for key in ("wall_images_per_s", "job_images_per_s")}
        for name, rs in runs.items()
    }
    base = {key: statistics.median(r[key] for r in runs["run"]) for key in ("wall_images_per_s", "job_images_per_s")}
    for name in summary:
        for key in base:
            summary[name][key]["vs_run"] = round(summary[name][key]["median"] / base[key], 3)
        summary[name]["cpu_ms_per_image"] = _median_spread([r["cpu_ms_per_image"] for r in runs[name]])
        big_cpu = statistics.median(r["cpu_s"] for r in runs[name])
        small_cpu = statistics.median(r["cpu_s"] for r in runs_small[name])
        summary[name]["marginal_cpu_ms_per_image"] = round((big_cpu - small_cpu) / (args.images - small) * 1e3, 2)
        summary[name]["fixed_cpu_s"] = round(small_cpu - small * (big_cpu - small_cpu) / (args.images - small), 2)
        for key in ("wall_s", "job_s"):
            big_s = statistics.median(r[key] for r in runs[name])
            small_s = statistics.median(r[key] for r in runs_small[name])
            rate = (args.images - small) / (big_s - small_s) if big_s > small_s else float("nan")
            summary[name][f"marginal_images_per_s_{key[:-2]}"] = round(rate, 2)
            summary[name][f"fixed_s_{key[:-2]}"] = round(small_s - small / rate, 2)
    for name in summary:
        summary[name]["marginal_vs_run"] = round(
            summary[name]["marginal_images_per_s_wall"] / summary["run"]["marginal_images_per_s_wall"], 3
        )
    result = {
        "benchmark": "batch_ray",
        "command": "flock /tmp/edgecls-cpu.lock python benchmarks/batch_ray.py "
        + ("--quick" if args.quick else f"--images {args.images} --repeats {args.repeats}"),
        "model": "mobilenetv2 width 1.0, 224 px, 10 classes, random weights, fp32, opset 17",
        "images": f"{args.images} x 640x480 JPEG (crops of scikit-image sample photos)",
        "batch_size": args.batch_size,
        "images_small": small,
        "commands": {name: " ".join(["edgecls", *argv(name, Path("PHOTOS"))]).replace(model, "MODEL")
                     .replace(str(out), "OUT") for name in names},
        "ray_version": ray.__version__,
        "environment": env.to_dict(),
        "summary": summary,
        "runs": runs,
        "runs_small": runs_small,
    }
    slug = (f"{re.sub(r'[^a-z0-9]+', '-', env.cpu_model.lower()).strip('-')[:40]}_{_isa(env.isa)}"
            f"_ort{env.versions.get('onnxruntime')}_ray{ray.__version__}_{env.timestamp[:10]}")
    target = RESULTS / f"batch_ray_{slug}{'_quick' if args.quick else ''}.json"
    from edgecls.runtime.atomic import atomic_write_text

    atomic_write_text(target, json.dumps(result, indent=2) + "\n")
    print(f"\n| command | images/s, whole process ({args.images} images) | vs run | images/s, job | vs run "
          "| marginal images/s | vs run | fixed s | CPU ms/image | marginal CPU ms/image | fixed CPU s |"
          "\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in summary.items():
        w, j = s["wall_images_per_s"], s["job_images_per_s"]
        print(f"| {name} | {w['median']} ({w['min']}-{w['max']}) | {w['vs_run']}x "
              f"| {j['median']} ({j['min']}-{j['max']}) | {j['vs_run']}x | {s['marginal_images_per_s_wall']} "
              f"| {s['marginal_vs_run']}x | {s['fixed_s_wall']} | {s['cpu_ms_per_image']['median']} "
              f"| {s['marginal_cpu_ms_per_image']} | {s['fixed_cpu_s']} |")
    print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
