"""Issue #30's parse-cost bombs against a real ``edgecls serve`` on loopback (run under
``flock /tmp/edgecls-cpu.lock``).

For each bomb, a fresh server (defaults): 4 attacking clients (4 processes) post the bomb back to back for
``--seconds`` (60) while a good client posts a 640x480 photo every second, and the server's RSS is sampled every
50 ms. Goals: every
good request answered 200 within 3 s, every bomb refused (4xx) within 1 s, the server's RSS under 500 MB
throughout. Before the pre-scan (issue #30): the PNG bomb cost 6.6 s of CPU and the APP1 one 8.5 s (695 MB), all
answered 200, and beside 4 attackers a good client's median went from 3 ms to 13.3 s (PNG) or to a 504 (APP1);
the TIFF tile bomb took the server to 2.25 GB.

The bombs (19 MB, as the issue measured them): a 1x1 PNG with 1.58 million empty private chunks, a JPEG with 4.75
million empty APP1 (or COM) segments, a JPEG with 19 million FF fill bytes, a 16x16 TIFF with one deflate tile
declared 16000x16000 RGBA (1 MB), and a PNG of 20000x20000 black pixels (1.17 MB, the pixel limit's bomb). The
pre-scan's own time on each is measured in this process first (median of 5).

Model: MobileNetV2 width 1.0 at 224 px, random weights (as benchmarks/serve_load.py), or ``--model FILE``.
Writes ``benchmarks/results/serve_parse_bombs_<cpu>_<isa>_ort<version>_<date>.json``.

    flock /tmp/edgecls-cpu.lock python benchmarks/serve_parse_bombs.py [--seconds 60] [--only png_chunks]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from fixtures_attacks import (  # noqa: E402
    jpeg_with_fill,
    jpeg_with_segments,
    png_of_zeros,
    png_with_chunks,
    tiff_tile_bomb,
)
from runtime_overhead import export_mobilenetv2, write_photos  # noqa: E402
from serve_attacks import ready, summary, write_results  # noqa: E402
from serve_load import Server  # noqa: E402

ATTACKERS = 4
OCTETS = {"Content-Type": "application/octet-stream"}


# name -> builder (bombs are built only when asked for: the two zero-filled ones compress 1 GB each)
ISSUE_BOMBS: dict[str, Callable[[], bytes]] = {
    "png_chunks": lambda: png_with_chunks(1_580_000),
    "jpeg_app1_segments": lambda: jpeg_with_segments(4_750_000),
    "jpeg_com_segments": lambda: jpeg_with_segments(4_750_000, 0xFE),
    "jpeg_fill_bytes": lambda: jpeg_with_fill(19_000_000),
    "tiff_tile_16000": lambda: tiff_tile_bomb(16000),
    "png_20000x20000": lambda: png_of_zeros(20000, 20000),
}


def prescan_ms(data: bytes, repeats: int = 5) -> tuple[float, str]:
    """Median wall time of the pre-scan on ``data`` in this process, and the refusal it gives."""
    from edgecls.runtime.errors import ImageDecodeError
    from edgecls.runtime.images.prescan.scan import prescan

    times, refusal = [], "accepted"
    for _ in range(repeats):
        t0 = time.perf_counter()
        try:
            prescan(data, "bomb")
        except ImageDecodeError as e:
            refusal = f"{type(e).__name__}: {e}"
        times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 3), refusal


def post(client: httpx.Client, data: bytes) -> tuple[int, float, str]:
    """(status, seconds, error kind) of one upload on a kept-alive connection: a new ``httpx.Client`` per request
    costs 24 ms of CPU (its TLS context), which under load was most of what serve_attacks.py's clients measured."""
    t0 = time.monotonic()
    try:
        r = client.post("/v1/classify", content=data, headers=OCTETS)
        status, kind = r.status_code, (r.json().get("kind", "") if r.status_code != 200 else "")
    except httpx.HTTPError as e:
        status, kind = 0, type(e).__name__
    return status, time.monotonic() - t0, kind


def _attacker(url: str, bomb_path: str, started: Any, stop: Any, out: Any) -> None:
    """One attacking client, in a process of its own (so the good client's timings are not the GIL's)."""
    bomb = Path(bomb_path).read_bytes()
    rows: list[tuple[int, float, str]] = []
    started.release()
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            rows.append(post(client, bomb))
    out.put(rows)


def attack(model: Path, photos: list[bytes], bomb: bytes, seconds: float, tmp: Path) -> dict:
    server = ready(Server(model, []))
    (tmp / "bomb").write_bytes(bomb)
    ctx = multiprocessing.get_context("spawn")
    started, stop, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    attackers = [ctx.Process(target=_attacker, args=(server.url, str(tmp / "bomb"), started, stop, out))
                 for _ in range(ATTACKERS)]
    sampling = threading.Event()
    good: list[tuple[int, float, str]] = []
    bad: list[tuple[int, float, str]] = []
    rss: list[float] = []

    def sample() -> None:
        while not sampling.is_set():
            rss.append(server.rss_mb())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    rss_idle = server.rss_mb()
    sampler.start()
    for p in attackers:
        p.start()
    for _ in attackers:
        started.acquire(timeout=120)
    cpu0, t_end, i = server.cpu_s(), time.monotonic() + seconds, 0
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while time.monotonic() < t_end:
                t0 = time.monotonic()
                good.append(post(client, photos[i % len(photos)]))
                i += 1
                time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
    finally:
        stop.set()
        for _ in attackers:
            bad.extend(out.get(timeout=120))
        for p in attackers:
            p.join(60)
        cpu = server.cpu_s() - cpu0
        sampling.set()
        sampler.join()
        server.stop()
    return {
        "bomb_bytes": len(bomb), "good": summary(good), "bombs": summary(bad),
        "good_over_3s": sum(t > 3 for _, t, _ in good), "bombs_over_1s": sum(t > 1 for _, t, _ in bad),
        "server_cpu_s": round(cpu, 2), "rss_mb": {"idle": round(rss_idle, 1), "peak": round(max(rss), 1)},
        "goals": {
            "every good request 200 within 3 s": bool(good) and all(s == 200 and t <= 3 for s, t, _ in good),
            "every bomb refused within 1 s": bool(bad) and all(400 <= s < 500 and t <= 1 for s, t, _ in bad),
            "RSS under 500 MB throughout": max(rss) < 500,
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long each bomb is sent (default 60)")
    ap.add_argument("--only", action="append", choices=sorted(ISSUE_BOMBS),
                    help="run only these bombs (repeatable; default all)")
    ap.add_argument("--model", type=Path, help="an edgecls ONNX model (default: MobileNetV2 224 px, random weights)")
    ap.add_argument("--out", type=Path, help="results file (default: benchmarks/results/serve_parse_bombs_<env>.json)")
    args = ap.parse_args()
    from edgecls.runtime.bench.env import collect_environment

    env = collect_environment()
    load_before = os.getloadavg()
    bombs = {name: build() for name, build in ISSUE_BOMBS.items() if not args.only or name in args.only}
    prescan = {name: dict(zip(("ms", "verdict"), prescan_ms(data), strict=True)) for name, data in bombs.items()}
    print("prescan:", json.dumps(prescan), flush=True)
    attacks = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or export_mobilenetv2(Path(tmp) / "mobilenetv2_224.onnx")
        photos = [p.read_bytes() for p in write_photos(Path(tmp) / "photos", 8)]
        for name, data in bombs.items():
            attacks[name] = attack(model, photos, data, args.seconds, Path(tmp))
            print(f"{name}:", json.dumps(attacks[name]), f"load {os.getloadavg()[0]:.2f}", flush=True)
    result = {
        "command": " ".join(["flock /tmp/edgecls-cpu.lock python benchmarks/serve_parse_bombs.py", *sys.argv[1:]]),
        "model": str(args.model) if args.model else "MobileNetV2 1.0, 224 px, random weights, fp32",
        "server": "edgecls serve defaults (--decode-threads 2, --max-body-mb 20, --max-pixels 40000000)",
        "attackers": ATTACKERS, "seconds_per_bomb": args.seconds,
        "prescan_in_process": prescan, "attacks": attacks,
    }
    write_results("serve_parse_bombs", result, env, load_before, args.out)


if __name__ == "__main__":
    main()
