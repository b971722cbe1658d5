"""Issue #30 item 7 measured: 300 slow-body connections beside a normal client, against a real ``edgecls serve`` on
loopback (run under ``flock /tmp/edgecls-cpu.lock``).

Each attacker connection sends a POST's headers at once and then one body byte every 2 s (a ``Content-Length`` body
or a chunked one), and reconnects whenever the server closes it. A normal client posts a 640x480 photo on a new
connection every second. Three scenarios: Content-Length and chunked attackers spread over 200 loopback addresses
(127.0.0.2-201: the per-client cap does not help), and Content-Length attackers on the client's own address
(127.0.0.1). Goal: >= 95% of the normal client's requests answered 200 within 2 s. With ``--before PYTHON`` (e.g.
/work/main/.venv/bin/python) every scenario also runs against that interpreter's edgecls, interleaved.

Server: defaults (256 connections, 64 per client, 1,024 B/s after a 10 s grace) unless ``--server-args``. Model:
MobileNetV2 width 1.0 at 224 px, random weights, or ``--model FILE``. Writes
``benchmarks/results/serve_slow_bodies_<cpu>_<isa>_ort<version>_<date>.json``.

    flock /tmp/edgecls-cpu.lock python benchmarks/serve_slow_bodies.py [--seconds 60] [--before PYTHON]
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from fixtures_slow_clients import SlowBodies  # noqa: E402
from runtime_overhead import export_mobilenetv2, write_photos  # noqa: E402
from serve_attacks import post, ready, summary  # noqa: E402
from serve_load import Server, add_before_and_out, environment_now, interpreters, publish  # noqa: E402

SCENARIOS = {
    "content-length, 200 addresses": (False, tuple(f"127.0.0.{i}" for i in range(2, 202))),
    "chunked, 200 addresses": (True, tuple(f"127.0.0.{i}" for i in range(2, 202))),
    "content-length, the client's address": (False, ("127.0.0.1",)),
}


def closes(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^edgecls_connections_closed_total\{reason="([^"]+)"\} (\S+)$', text, re.MULTILINE)}


def scenario(model: Path, photos: list[bytes], chunked: bool, sources: tuple[str, ...], attackers: int,
             seconds: float, python: str | None, server_args: list[str]) -> dict:
    server = ready(Server(model, server_args, python=python))
    attack = SlowBodies(server.url, attackers, chunked=chunked, interval=2.0, sources=sources).start(settle_s=5.0)
    rows: list[tuple[int, float, str]] = []
    try:
        t_end, i = time.monotonic() + seconds, 0
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            rows.append(post(server.url, photos[i % len(photos)], timeout=10))  # a new connection each time
            i += 1
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        closed = closes(server.url) if server.proc.poll() is None else None
        rss = server.rss_mb()
    finally:
        attack.stop()
        server.stop()
    within = sum(1 for status, s, _ in rows if status == 200 and s <= 2.0)
    return {"client": summary(rows), "answered_200_within_2s": within, "share_within_2s": round(within / len(rows), 4),
            "attack": {"connections_opened": attack.opened, "closed_by_server": attack.closed_by_server,
                       "answers_seen": dict(attack.answers)},
            "server_closes_by_reason": closed, "server_rss_mb_at_end": round(rss, 1),
            "goal_95pct_within_2s": within >= 0.95 * len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the normal client posts, per scenario")
    ap.add_argument("--attackers", type=int, default=300)
    ap.add_argument("--model", type=Path, help="an edgecls ONNX model (default: MobileNetV2 224 px, random weights)")
    ap.add_argument("--server-args", default="", help="extra `edgecls serve` flags, e.g. '--max-connections 64'")
    add_before_and_out(ap, "serve_slow_bodies")
    args = ap.parse_args()
    env, load_before = environment_now()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or export_mobilenetv2(Path(tmp) / "mobilenetv2_224.onnx")
        photos = [p.read_bytes() for p in write_photos(Path(tmp) / "photos", 8)]
        for name, (chunked, sources) in SCENARIOS.items():
            runs = interpreters(args.before)
            results[name] = {}
            for label, python in runs.items():
                row = scenario(model, photos, chunked, sources, args.attackers, args.seconds, python,
                               shlex.split(args.server_args))
                results[name][label] = row
                print(f"{name} [{label}]: {row['answered_200_within_2s']}/{row['client']['count']} within 2 s, "
                      f"statuses {row['client']['statuses']}, closes {row['server_closes_by_reason']}", flush=True)
    result = {
        "command": " ".join(["flock /tmp/edgecls-cpu.lock python benchmarks/serve_slow_bodies.py", *sys.argv[1:]]),
        "model": str(args.model) if args.model else "MobileNetV2 1.0, 224 px, random weights, fp32",
        "attack": f"{args.attackers} connections: headers at once, then 1 body byte every 2 s; reconnect when closed",
        "client": "a 640x480 JPEG posted on a new connection every second, 10 s timeout",
        "server": "edgecls serve defaults" + (f" + {args.server_args}" if args.server_args else ""),
        "before": args.before, "scenarios": results,
    }
    publish("serve_slow_bodies", result, env, load_before, args.out)


if __name__ == "__main__":
    main()
