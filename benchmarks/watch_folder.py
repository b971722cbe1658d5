"""A folder receiving files while ``edgecls run|batch DIR --watch`` classifies it, killed with SIGKILL and restarted
in the middle: is each file classified exactly once, and none half-read?

Arrivals, round robin over the files: ``copy`` (written in place in one go), ``slow`` (written in place in four
chunks, each pause ``--pause``, 0.6 x --settle by default: the file stays visible and incomplete for about two
settle intervals), and
``renamed`` (written in a staging folder on the same filesystem, then renamed in, as FTP servers and rsync do).
One file in four goes to a sub-folder (``sub/`` or ``sub/deeper/``). ``--writers`` threads drop ``--files``
files over ``--seconds`` seconds. The watcher is killed with SIGKILL ``--kills`` times at even steps of the
drop and restarted half a second later; once every file has a row (or ``--timeout``) it gets SIGTERM.

Checked against the output itself (run: the ``--csv``; batch: the ``--out`` table): one row per file (no
duplicate, none missing), and each row's top-k equal to a one-shot ``edgecls run FOLDER --json`` of the finished
folder (a file read while half-written fails to decode or scores otherwise). Latency: from a file's writer
finishing to its row appearing in the output (polled every 0.1 s).

    flock /tmp/edgecls-cpu.lock python benchmarks/watch_folder.py --command run [--files 500] [--model M.onnx]

Model: ``--model``, or MobileNetV2 x0.5 at 128 px with random weights exported here (benchmarks/runtime_overhead.py).
Writes ``benchmarks/results/watch_folder_<command>_<cpu>_ort<version>_<date>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
KINDS = ("copy", "slow", "renamed")


def make_pictures(folder: Path, count: int) -> list[Path]:
    """``count`` distinct 320x240 pictures (JPEG and PNG): coloured rectangles and the file's number."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        image = np.full((240, 320, 3), rng.integers(0, 256, 3), np.uint8)
        for _ in range(4):
            x, y = (int(v) for v in rng.integers(0, 280, 2))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            cv2.rectangle(image, (x, y % 200), (x + 40, y % 200 + 40), colour, -1)
        cv2.putText(image, str(i), (20, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 3)
        path = folder / f"img_{i:04d}{'.jpg' if i % 2 else '.png'}"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


class Drop:
    """Writes the pictures into the watched folder, each by its kind; records when each writer finished."""

    def __init__(self, pictures: list[Path], folder: Path, staging: Path, pause_s: float) -> None:
        self.folder, self.staging, self.pause_s = folder, staging, pause_s
        self.plan = [(p, KINDS[i % 3], self._target(i, p.name)) for i, p in enumerate(pictures)]
        self.finished: dict[str, float] = {}  # target path -> time.monotonic() when its writer finished
        self._lock = threading.Lock()

    def _target(self, i: int, name: str) -> Path:
        if i % 4 != 1:
            return self.folder / name
        return self.folder / ("sub", "sub/deeper")[i // 4 % 2] / name

    def write(self, source: Path, kind: str, target: Path) -> None:
        data = source.read_bytes()
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "renamed":
            tmp = self.staging / f"{target.name}.{threading.get_ident()}.part"
            tmp.write_bytes(data)
            os.rename(tmp, target)
        elif kind == "slow":
            with open(target, "wb") as f:
                for i in range(4):
                    f.write(data[i * len(data) // 4 : (i + 1) * len(data) // 4])
                    f.flush()
                    if i < 3:
                        time.sleep(self.pause_s)
        else:
            target.write_bytes(data)
        with self._lock:
            self.finished[str(target)] = time.monotonic()

    def run(self, seconds: float, writers: int, on_progress) -> None:
        """Drop every file, spread over ``seconds``; ``on_progress(done)`` after each one."""
        interval = seconds / max(1, len(self.plan))
        start = time.monotonic()
        todo = list(enumerate(self.plan))
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    if not todo:
                        return
                    i, (source, kind, target) = todo.pop(0)
                delay = start + i * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self.write(source, kind, target)
                on_progress(len(self.finished))

        threads = [threading.Thread(target=worker) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def read_rows(command: str, out: Path) -> list[dict]:
    """The rows in the watcher's output now: ``{source, top_k, error}`` (complete rows only)."""
    if command == "run":
        if not out.exists():
            return []
        data = out.read_bytes()
        text = data[: data.rfind(b"\n") + 1].decode("utf-8", errors="replace")
        return [{"source": r["source"], "top_k": json.loads(r["top_k"]) if r["top_k"] else None,
                 "error": r["error"] or None} for r in csv.DictReader(io.StringIO(text, newline=""))]
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for part in sorted(out.glob("part-*.parquet")) if out.is_dir() else []:
        rows += pq.read_table(part, columns=["source", "top_k", "error"]).to_pylist()
    return rows


def watcher(command: str, model: Path, folder: Path, out: Path, settle_s: float) -> subprocess.Popen[bytes]:
    args = ["--csv", str(out)] if command == "run" else ["--out", str(out)]
    return subprocess.Popen([sys.executable, "-m", "edgecls", command, str(model), str(folder), "--watch",
                             "--settle", str(settle_s), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def soak(command: str, model: Path, work: Path, files: int, seconds: float, writers: int, settle_s: float,
         pause_s: float, kills: int, timeout: float) -> dict:
    folder, staging, out = work / "watched", work / "staging", work / ("out.csv" if command == "run" else "table")
    folder.mkdir()
    staging.mkdir()
    drop = Drop(make_pictures(work / "pictures", files), folder, staging, pause_s)
    proc = watcher(command, model, folder, out, settle_s)
    kill_at = [files * (k + 1) // (kills + 1) for k in range(kills)]
    killed: list[int] = []
    seen: dict[str, float] = {}
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()

    def progress(done: int) -> None:
        nonlocal proc
        if kill_at and done >= kill_at[0] and len(killed) < kills:
            kill_at.pop(0)
            proc.kill()  # SIGKILL: no cleanup, no flush
            proc.wait()
            killed.append(done)
            time.sleep(0.5)
            proc = watcher(command, model, folder, out, settle_s)

    dropper = threading.Thread(target=drop.run, args=(seconds, writers, progress))
    dropper.start()
    drop_end = None
    while (dropper.is_alive() or len(seen) < files) and time.monotonic() - t0 < timeout:
        if drop_end is None and not dropper.is_alive():
            drop_end = time.monotonic() - t0
        if proc.poll() is not None and proc.returncode != -signal.SIGKILL:
            raise SystemExit(f"the watcher exited ({proc.returncode}): {proc.stderr.read().decode().strip()}")
        now = time.monotonic()
        for row in read_rows(command, out):
            seen.setdefault(row["source"], now)
        time.sleep(0.1)
    dropper.join()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    total = time.monotonic() - t0
    rows = read_rows(command, out)
    one_shot = subprocess.run([sys.executable, "-m", "edgecls", "run", str(model), str(folder), "--json"],
                              capture_output=True, text=True, timeout=600)
    want = {r["source"]: r.get("top_k") for r in map(json.loads, one_shot.stdout.splitlines())}
    if set(want) != set(drop.finished):
        raise SystemExit(f"the one-shot run did not classify the finished folder: {one_shot.stderr.strip()}")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["source"]] = counts.get(r["source"], 0) + 1
    got = {r["source"]: r for r in rows}
    latencies = [seen[p] - drop.finished[p] for p in drop.finished if p in seen]
    return {
        "command": command,
        "files": files,
        "kinds": {k: sum(1 for _, kind, _ in drop.plan if kind == k) for k in KINDS},
        "in_sub_folders": sum(1 for _, _, t in drop.plan if t.parent != folder),
        "settle_s": settle_s,
        "slow_writer_pause_s": pause_s,
        "drop_seconds": seconds,
        "drop_took_seconds": round(drop_end, 2) if drop_end is not None else None,  # slow files hold a writer
        "kills_after_files": killed,
        "rows": len(rows),
        "duplicates": sum(n - 1 for n in counts.values() if n > 1),
        "missing": len(set(want) - set(got)),
        "extra": len(set(got) - set(want)),
        "error_rows": sum(1 for r in rows if r["error"]),
        "mismatched": sum(1 for s, r in got.items() if s in want and r["top_k"] != want[s]),
        "latency_s": {"p50": statistics.median(latencies), "p95": float(np.percentile(latencies, 95)),
                      "max": max(latencies)} if latencies else None,
        "total_seconds": round(total, 2),
        "exit_status": proc.returncode,
        "watcher_stderr_tail": stderr.decode(errors="replace").strip().splitlines()[-1:],
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def default_model(work: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).parent))
    from runtime_overhead import export_mobilenetv2

    return export_mobilenetv2(work / "mnv2_050_128.onnx", size=128, arch="mobilenetv2_050")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--command", choices=("run", "batch"), default="run")
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--files", type=int, default=500)
    p.add_argument("--seconds", type=float, default=20.0, help="Spread the drop over this many seconds.")
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--pause", type=float, default=None,
                   help="Slow writers' pause between chunks (default 0.6 x --settle; longer: only the check that no "
                   "writer holds the file open keeps it from being read early).")
    p.add_argument("--kills", type=int, default=2)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--out", type=Path, default=None, help="Result JSON (default: benchmarks/results/...).")
    args = p.parse_args()
    from edgecls.runtime.bench.env import collect_environment, environment_slug

    with tempfile.TemporaryDirectory(prefix="edgecls-watch-") as tmp:
        work = Path(tmp)
        model = args.model or default_model(work)
        pause = 0.6 * args.settle if args.pause is None else args.pause
        result = soak(args.command, model, work, args.files, args.seconds, args.writers, args.settle, pause,
                      args.kills, args.timeout)
        shutil.rmtree(work / "pictures", ignore_errors=True)
    env = collect_environment()
    result["model"] = args.model.name if args.model else "mobilenetv2_050 128 px (random weights)"
    result["environment"] = {"cpu": env.cpu_model, "logical_cores": env.logical_cores, "timestamp": env.timestamp}
    out = args.out or RESULTS / f"watch_folder_{args.command}_{environment_slug(env)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    lat = result["latency_s"] or {}
    print(f"{args.command}: {result['rows']} rows for {result['files']} files, {result['duplicates']} duplicate(s), "
          f"{result['missing']} missing, {result['mismatched']} mismatched, {result['error_rows']} error row(s), "
          f"kills after {result['kills_after_files']} files; latency p50 {lat.get('p50', float('nan')):.2f} s "
          f"p95 {lat.get('p95', float('nan')):.2f} s -> {out}")


if __name__ == "__main__":
    main()
