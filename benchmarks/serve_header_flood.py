"""Issue #30 item 10 measured: header floods beside a normal client, against a real ``edgecls serve`` on loopback
(run under ``flock /tmp/edgecls-cpu.lock``).

Four attacker threads send, back to back on new connections, ``GET /v1/model`` requests carrying 7,300 header lines
of 8 bytes (58 KB: under the 64 KiB head limit) and read the answer; a normal client posts a 640x480 photo on its
keep-alive connection every 0.25 s. Measured: the normal client's latency without attackers, then with them, and
what the attackers got. With ``--before PYTHON`` (e.g. /work/main/.venv/bin/python) the same against that
interpreter's edgecls, interleaved.

Model: MobileNetV2 width 1.0 at 224 px, random weights, or ``--model FILE``. Writes
``benchmarks/results/serve_header_flood_<cpu>_<isa>_ort<version>_<date>.json`` (or ``--out``).

    flock /tmp/edgecls-cpu.lock python benchmarks/serve_header_flood.py [--seconds 30] [--before PYTHON]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from runtime_overhead import export_mobilenetv2, write_photos  # noqa: E402
from serve_attacks import ready  # noqa: E402
from serve_load import Server, add_before_and_out, environment_now, interpreters, publish  # noqa: E402

LINES = 7300


def flood_request(host: str, port: int) -> bytes:
    return (f"GET /v1/model HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n".encode()
            + b"X: abc\r\n" * LINES + b"\r\n")


def client_latencies(url: str, photos: list[bytes], seconds: float) -> list[float]:
    out = []
    with httpx.Client(base_url=url, timeout=30) as c:
        t_end, i = time.monotonic() + seconds, 0
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            r = c.post("/v1/classify", content=photos[i % len(photos)], headers={"Content-Type": "image/jpeg"})
            out.append(time.monotonic() - t0 if r.status_code == 200 else float("inf"))
            i += 1
            time.sleep(max(0.0, 0.25 - (time.monotonic() - t0)))
    return out


def stats(seconds: list[float]) -> dict:
    ms = sorted(s * 1e3 for s in seconds)
    return {"count": len(ms), "failed": sum(1 for v in ms if v == float("inf")),
            "median_ms": round(statistics.median(ms), 1), "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1),
            "max_ms": round(ms[-1], 1)}


def measure(model: Path, photos: list[bytes], seconds: float, python: str | None) -> dict:
    server = ready(Server(model, [], python=python))
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    request = flood_request(host, int(port))
    stop = threading.Event()
    statuses: Counter[str] = Counter()

    def attacker() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection((host, int(port)), timeout=30) as s:
                    s.sendall(request)
                    reply = s.recv(64)
                statuses[reply[9:12].decode() or "closed"] += 1
            except OSError as e:
                statuses[type(e).__name__] += 1

    try:
        quiet = client_latencies(server.url, photos, seconds / 2)
        attackers = [threading.Thread(target=attacker) for _ in range(4)]
        for t in attackers:
            t.start()
        flooded = client_latencies(server.url, photos, seconds)
        stop.set()
        for t in attackers:
            t.join(60)
    finally:
        stop.set()
        server.stop()
    return {"quiet": stats(quiet), "under_flood": stats(flooded), "flood_answers": dict(statuses)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="how long the client posts under the flood")
    ap.add_argument("--model", type=Path, help="an edgecls ONNX model (default: MobileNetV2 224 px, random weights)")
    add_before_and_out(ap, "serve_header_flood")
    args = ap.parse_args()
    env, load_before = environment_now()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or export_mobilenetv2(Path(tmp) / "mobilenetv2_224.onnx")
        photos = [p.read_bytes() for p in write_photos(Path(tmp) / "photos", 8)]
        for label, python in interpreters(args.before).items():
            runs[label] = measure(model, photos, args.seconds, python)
            print(f"[{label}] {runs[label]}", flush=True)
    result = {
        "command": " ".join(["flock /tmp/edgecls-cpu.lock python benchmarks/serve_header_flood.py", *sys.argv[1:]]),
        "model": str(args.model) if args.model else "MobileNetV2 1.0, 224 px, random weights, fp32",
        "server": "edgecls serve defaults",
        "attack": f"4 threads, new connection per request, {LINES} header lines of 8 bytes each",
        "client": "a 640x480 JPEG every 0.25 s on one keep-alive connection", "runs": runs,
    }
    publish("serve_header_flood", result, env, load_before, args.out)


if __name__ == "__main__":
    main()
