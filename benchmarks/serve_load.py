"""Load test of ``edgecls serve`` on loopback (run under ``flock /tmp/edgecls-cpu.lock``): is the HTTP service
as fast as the Classifier itself?

1. Reference: the Classifier in a tight loop doing the same work a request does (decode the JPEG bytes at the
   contract's reduced scale, preprocess, classify, top-3), at batch sizes 1-16; the best batch size counts.
2. ``edgecls serve MODEL --port 0`` as a real process (127.0.0.1 only); 1, 8 and 32 concurrent clients (httpx,
   one keep-alive connection each) post the same 640x480 JPEGs for a fixed number of requests per level:
   throughput, client-side p50/p90/p99 latency, errors (must be 0), the server's batch-size histogram
   (from its /metrics), the server's RSS before/after and the CPU seconds of server and load generator.

Goals (issue #14): at 8 clients >= 90% of the best tight-loop throughput; p99 <= 3x p50; RSS growth <= 5 MB over
10,000 requests (the 8-client level sends 10,000). On a 2-core machine the load generator shares the cores with
the server, so its CPU time is reported beside the throughput.

Model: MobileNetV2 width 1.0 at 224 px with random weights (exported with torch, as benchmarks/runtime_overhead.py
does), or ``--model FILE``; images: crops of scikit-image's sample photos as 640x480 JPEGs.

    flock /tmp/edgecls-cpu.lock python benchmarks/serve_load.py [--quick]

Writes ``benchmarks/results/serve_load_<cpu>_<isa>_ort<version>_<date>.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from runtime_overhead import REPO, RESULTS, export_mobilenetv2, write_photos  # noqa: E402


# --- 1. the Classifier in a tight loop ------------------------------------------------------------------------
def tight_loop(model: Path, photos: list[bytes], threads: int, batches: tuple[int, ...], seconds: float) -> dict:
    from edgecls.runtime.images.decode import decode_bytes
    from edgecls.runtime.inference.classifier import Classifier
    from edgecls.runtime.inference.preprocess import decode_floor, preprocess_batch

    clf = Classifier(model, threads=threads, spin=False)  # the session options edgecls serve uses
    floor = decode_floor(clf.contract)
    rows = {}
    for b in batches:
        def once(start: int, b: int = b) -> None:
            images = [decode_bytes(photos[(start + i) % len(photos)], "photo", floor) for i in range(b)]
            clf.classify(preprocess_batch(images, clf.contract), top_k=3)

        for i in range(3):  # warm-up
            once(i)
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds:
            once(n)
            n += b
        end_to_end = n / (time.perf_counter() - t0)
        cpu_ms = (time.process_time() - c0) / n * 1e3  # all threads of this process: comparable to the server's
        x = preprocess_batch([decode_bytes(photos[i % len(photos)], "photo", floor) for i in range(b)], clf.contract)
        m, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            clf.classify(x, top_k=3)
            m += b
        model_only = m / (time.perf_counter() - t0)
        rows[b] = {"images_per_s": round(end_to_end, 2), "cpu_ms_per_image": round(cpu_ms, 3),
                   "model_only_images_per_s": round(model_only, 2)}
        print(f"tight loop batch {b:2d}: {end_to_end:7.1f} img/s, {cpu_ms:.2f} CPU ms/img (model only "
              f"{model_only:.1f} img/s)", flush=True)
    best = max(rows, key=lambda k: rows[k]["images_per_s"])
    return {"threads": threads, "by_batch": rows, "best_batch": best, "best_images_per_s": rows[best]["images_per_s"]}


# --- 2. the server under load -----------------------------------------------------------------------------------
class Server:
    """``edgecls serve MODEL --port 0 ARGS`` on loopback; ``python``: another interpreter's edgecls (e.g. main's, for
    a before/after run)."""

    def __init__(self, model: Path, args: list[str], python: str | None = None) -> None:
        exe = Path(python or sys.executable).with_name("edgecls")
        cmd = [str(exe)] if exe.exists() else [python or sys.executable, "-m", "edgecls"]
        self.proc = subprocess.Popen([*cmd, "serve", str(model), "--port", "0", *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
        self.stderr: list[str] = []
        found = threading.Event()
        self.url = ""

        def read() -> None:
            for line in self.proc.stderr:
                self.stderr.append(line)
                m = re.search(r"edgecls serve: (http://127\.0\.0\.1:\d+)/", line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(60):
            self.proc.kill()
            raise RuntimeError("server did not start: " + "".join(self.stderr))
        self.ps = psutil.Process(self.proc.pid)

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def batch_histogram(self) -> dict[str, float]:
        import httpx

        text = httpx.get(self.url + "/metrics").text
        return {m.group(1): float(m.group(2))
                for m in re.finditer(r'^edgecls_batch_size_bucket\{le="([^"]+)"\} (\S+)$', text, re.MULTILINE)}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


class RawClient:
    """One keep-alive HTTP/1.1 connection posting images (asyncio streams).

    The load generator shares the server's cores here, so it must be cheap: httpx costs about 3 ms of CPU per
    request on this machine (``--client httpx`` measures it), this about a tenth of that. It speaks just what
    the test needs: POST with Content-Length, a response with Content-Length.
    """

    def __init__(self, url: str) -> None:
        m = re.match(r"http://([^:/]+):(\d+)", url)
        assert m, url
        self.host, self.port = m.group(1), int(m.group(2))
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _load(url: str, photos: list[bytes], clients: int, total: int, kind: str) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    sent = 0

    async def client(post, k: int) -> None:
        nonlocal sent, errors
        while sent < total:
            i = sent
            sent += 1
            t0 = time.perf_counter()
            status = await post(photos[(i + k) % len(photos)])
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors += 1

    if kind == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as c:
            async def post(body: bytes) -> int:
                r = await c.post("/v1/classify", content=body, headers={"Content-Type": "image/jpeg"})
                return r.status_code

            t0 = time.perf_counter()
            await asyncio.gather(*(client(post, k) for k in range(clients)))
            return latencies, errors, time.perf_counter() - t0
    raws = [RawClient(url) for _ in range(clients)]
    t0 = time.perf_counter()
    await asyncio.gather(*(client(lambda b, r=r: r.post("/v1/classify", b), k) for k, r in enumerate(raws)))
    elapsed = time.perf_counter() - t0
    for r in raws:
        await r.close()
    return latencies, errors, elapsed


def load_level(server: Server, photos: list[bytes], clients: int, total: int, kind: str) -> dict:
    asyncio.run(_load(server.url, photos, clients, min(100, total), kind))  # warm-up: threads, allocator
    hist0, rss0, cpu0 = server.batch_histogram(), server.rss_mb(), server.cpu_s()
    me0 = time.process_time()
    latencies, errors, elapsed = asyncio.run(_load(server.url, photos, clients, total, kind))
    client_cpu = time.process_time() - me0
    hist1, rss1, cpu1 = server.batch_histogram(), server.rss_mb(), server.cpu_s()
    cumulative = {le: hist1[le] - hist0.get(le, 0.0) for le in hist1}
    bounds = list(cumulative)
    per_bucket = {}
    prev = 0.0
    for le in bounds:  # Prometheus buckets are cumulative: "le=4" counts batches of 1-4
        per_bucket[le] = int(cumulative[le] - prev)
        prev = cumulative[le]
    ms = sorted(v * 1e3 for v in latencies)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    calls = int(cumulative.get("+Inf", 0))
    row = {
        "clients": clients, "requests": total, "errors": errors, "seconds": round(elapsed, 3),
        "requests_per_s": round(total / elapsed, 2),
        "latency_ms": {"p50": round(q[49], 2), "p90": round(q[89], 2), "p99": round(q[98], 2),
                       "max": round(ms[-1], 2)},
        "p99_over_p50": round(q[98] / q[49], 2),
        "model_calls": calls, "mean_batch": round(total / calls, 2) if calls else None,
        "batch_size_buckets": {k: v for k, v in per_bucket.items() if v},
        "rss_mb": {"before": round(rss0, 1), "after": round(rss1, 1), "growth": round(rss1 - rss0, 1)},
        "cpu_s_per_request": {"server": round((cpu1 - cpu0) / total * 1e3, 3), "load_generator":
                              round(client_cpu / total * 1e3, 3), "unit": "ms"},
    }
    print(f"{clients:2d} clients x {total}: {row['requests_per_s']:7.1f} req/s  p50 {row['latency_ms']['p50']:.1f} ms"
          f"  p99 {row['latency_ms']['p99']:.1f} ms  errors {errors}  mean batch {row['mean_batch']}  "
          f"RSS {rss0:.1f} -> {rss1:.1f} MB  CPU ms/req server {row['cpu_s_per_request']['server']}"
          f" client {row['cpu_s_per_request']['load_generator']}", flush=True)
    return row


def add_before_and_out(ap: argparse.ArgumentParser, stem: str) -> None:
    """The flags of a before/after serve benchmark: ``--before PYTHON`` and ``--out FILE``."""
    ap.add_argument("--before", help="another Python whose edgecls is measured too (e.g. main's venv)")
    ap.add_argument("--out", type=Path, help=f"results file (default: benchmarks/results/{stem}_<env>.json)")


def interpreters(before: str | None) -> dict[str, str | None]:
    """Which edgecls to measure: this tree's (None: this interpreter) and, with ``--before``, that one's."""
    return {"this tree": None, **({"before": before} if before else {})}


def environment_now():  # -> (edgecls.runtime.bench.env's environment, the load average now)
    """What :func:`publish` writes beside a benchmark's results, taken before it starts."""
    from edgecls.runtime.bench.env import collect_environment

    return collect_environment(), os.getloadavg()


def publish(stem: str, result: dict, env, load_before: tuple[float, ...], out: Path | None = None) -> Path:
    """Write ``result`` with the load average (before and now) and the environment beside it, to ``out`` or to
    ``benchmarks/results/<stem>_<cpu>_<isa>_ort<version>_<date>.json``."""
    from edgecls.runtime.bench.env import environment_slug

    result = {**result, "load_average": {"before": [round(v, 2) for v in load_before],
                                         "after": [round(v, 2) for v in os.getloadavg()]},
              "environment": env.to_dict()}
    cpu, rest = environment_slug(env).split("_ort", 1)
    out = out or RESULTS / f"{stem}_{cpu}_{isa_tag(env.isa)}_ort{rest}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return out


def isa_tag(isa: list[str]) -> str:
    if any("vnni" in f for f in isa):
        return "avx512vnni" if "avx512_vnni" in isa or "avx512vnni" in isa else "vnni"
    for tag in ("avx512f", "avx2", "asimd", "neon"):
        if tag in isa:
            return tag
    return "baseisa"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="an edgecls ONNX model (default: MobileNetV2 224 px, random weights)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-batch-size", default="auto",
                    help="the server's --max-batch-size (auto: the tight loop's best)")
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--decode-threads", type=int, default=2, help="the server's --decode-threads")
    ap.add_argument("--levels", default="1:1000,8:10000,32:2000", help="clients:requests,...")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load generator (see RawClient)")
    ap.add_argument("--quick", action="store_true", help="a smoke run with few requests (not for publishing)")
    ap.add_argument("--out", type=Path, help="results file (default: benchmarks/results/serve_load_<env>.json)")
    args = ap.parse_args()
    from edgecls.runtime.bench.env import collect_environment, environment_slug

    env = collect_environment()
    levels = [(int(c), int(n)) for c, n in (p.split(":") for p in args.levels.split(","))]
    if args.quick:
        levels = [(c, min(n, 200)) for c, n in levels]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or export_mobilenetv2(Path(tmp) / "mobilenetv2_224.onnx")
        photos = [p.read_bytes() for p in write_photos(Path(tmp) / "photos", 16)]
        load_before = os.getloadavg()
        reference = tight_loop(model, photos, args.threads, (1, 2, 4, 8, 16), 1.0 if args.quick else 4.0)
        max_batch = reference["best_batch"] if args.max_batch_size == "auto" else int(args.max_batch_size)
        server = Server(model, ["--threads", str(args.threads), "--max-batch-size", str(max_batch),
                                "--max-wait-ms", str(args.max_wait_ms), "--decode-threads", str(args.decode_threads)])
        try:
            rows = [load_level(server, photos, c, n, args.client) for c, n in levels]
        finally:
            server.stop()
        # The reference again after the load levels: on a shared machine the background load moves; the goal
        # is judged against the better of the two.
        reference_after = tight_loop(model, photos, args.threads, (reference["best_batch"],),
                                     1.0 if args.quick else 4.0)
        load_after = os.getloadavg()
    best = max(reference["best_images_per_s"], reference_after["best_images_per_s"])
    eight = next((r for r in rows if r["clients"] == 8), None)
    big = max(rows, key=lambda r: r["requests"])
    goals = {
        "8 clients >= 90% of the tight loop": None if eight is None else {
            "ratio": round(eight["requests_per_s"] / best, 3), "met": eight["requests_per_s"] >= 0.9 * best},
        "p99 <= 3x p50": {str(r["clients"]): {"ratio": r["p99_over_p50"], "met": r["p99_over_p50"] <= 3.0}
                          for r in rows},
        "RSS growth <= 5 MB over 10,000 requests": {"requests": big["requests"], "growth_mb": big["rss_mb"]["growth"],
                                                    "met": big["requests"] >= 10000 and big["rss_mb"]["growth"] <= 5.0},
        "errors == 0": {"errors": sum(r["errors"] for r in rows), "met": all(r["errors"] == 0 for r in rows)},
    }
    result = {
        "command": " ".join(["flock /tmp/edgecls-cpu.lock python benchmarks/serve_load.py", *sys.argv[1:]]),
        "model": str(args.model) if args.model else "MobileNetV2 1.0, 224 px, random weights, fp32",
        "load_generator": args.client,
        "server": {"threads": args.threads, "max_batch": max_batch, "max_wait_ms": args.max_wait_ms,
                   "decode_threads": args.decode_threads},
        "images": "16 JPEGs, 640x480, quality 90 (scikit-image sample photo crops)",
        "tight_loop": reference, "tight_loop_after": reference_after, "reference_images_per_s": best,
        "levels": rows, "goals": goals,
        "load_average": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in load_after]},
        "environment": env.to_dict(),
        "quick": args.quick,
    }
    slug = environment_slug(env)
    cpu, rest = slug.split("_ort", 1)
    tag = f"{cpu}_{isa_tag(env.isa)}_ort{rest}_decode{args.decode_threads}{'_quick' if args.quick else ''}"
    out = args.out or RESULTS / f"serve_load_{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(goals, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
