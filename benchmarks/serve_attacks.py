"""Issue #20's serve attacks, measured against a real ``edgecls serve`` on loopback (run under
``flock /tmp/edgecls-cpu.lock``).

1. Scan bombs beside good uploads: a client posts a 640x480 photo every 1.5 s while two attackers post
   progressive-JPEG scan bombs (6000x6000, smallest scan repeated 5,000 times: 440 KB, ~3.6 s of decoding if
   admitted) back to back. Goal: every good upload answered 200 within 3 s, every bomb refused within 1 s.
2. Idle sockets: the server runs under a 300-descriptor limit (RLIMIT_NOFILE); 400 sockets are opened to it and
   left silent, then new requests are timed. Goal: a new request served within 10 s.
3. Drain past its timeout: a scan bomb let through (``--max-jpeg-scans 1000000``, 40,000 repeats: ~28 s of
   decoding) is in flight when SIGTERM arrives with ``--drain-timeout 3``. Goal: a JSON 503 and the process gone
   within 4 s (it took 35.6 s, with a bare 500, before).

Model: MobileNetV2 width 1.0 at 224 px, random weights (as benchmarks/serve_load.py), or ``--model FILE``;
photos: scikit-image sample crops. Writes ``benchmarks/results/serve_attacks_<cpu>_<isa>_ort<version>_<date>.json``
and prints each part's figures and goals.

    flock /tmp/edgecls-cpu.lock python benchmarks/serve_attacks.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from fixtures_attacks import descriptor_limit, open_idle_sockets, scan_bomb  # noqa: E402
from runtime_overhead import RESULTS, export_mobilenetv2, write_photos  # noqa: E402
from serve_load import Server, isa_tag  # noqa: E402

JPEG = {"Content-Type": "image/jpeg"}


def ready(server: Server) -> Server:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url + "/readyz").status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server never became ready: " + "".join(server.stderr))


def post(url: str, data: bytes, timeout: float = 60) -> tuple[int, float, str]:
    t0 = time.monotonic()
    try:
        r = httpx.post(url + "/v1/classify", content=data, headers=JPEG, timeout=timeout)
        status, kind = r.status_code, (r.json().get("kind", "") if r.status_code != 200 else "")
    except httpx.HTTPError as e:
        status, kind = 0, type(e).__name__
    return status, time.monotonic() - t0, kind


def summary(rows: list[tuple[int, float, str]]) -> dict:
    seconds = [s for _, s, _ in rows]
    statuses: dict[str, int] = {}
    for status, _, kind in rows:
        key = f"{status} {kind}".strip()
        statuses[key] = statuses.get(key, 0) + 1
    return {"count": len(rows), "statuses": statuses,
            "seconds": {"median": round(statistics.median(seconds), 4), "max": round(max(seconds), 4),
                        "min": round(min(seconds), 4)} if seconds else None}


def bombs_beside_good_uploads(model: Path, photos: list[bytes], seconds: float) -> dict:
    bomb = scan_bomb(6000, 5000)
    server = ready(Server(model, []))
    stop = threading.Event()
    good: list[tuple[int, float, str]] = []
    bad: list[tuple[int, float, str]] = []

    def attacker() -> None:
        while not stop.is_set():
            bad.append(post(server.url, bomb))

    attackers = [threading.Thread(target=attacker) for _ in range(2)]
    for t in attackers:
        t.start()
    t_end, i = time.monotonic() + seconds, 0
    try:
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            good.append(post(server.url, photos[i % len(photos)]))
            i += 1
            time.sleep(max(0.0, 1.5 - (time.monotonic() - t0)))
    finally:
        stop.set()
        for t in attackers:
            t.join(60)
        server.stop()
    g, b = summary(good), summary(bad)
    return {"bomb_bytes": len(bomb), "good": g, "bombs": b, "goals": {
        "every good upload 200 within 3 s": all(s == 200 and t <= 3 for s, t, _ in good),
        "every bomb refused within 1 s": all(400 <= s < 500 and t <= 1 for s, t, _ in bad)}}


def idle_sockets(model: Path, photo: bytes, idle: int, limit: int) -> dict:
    with descriptor_limit(limit):
        server = ready(Server(model, []))
    socks = open_idle_sockets(server.url, idle)
    try:
        rows = [post(server.url, photo, timeout=30) for _ in range(5)]
    finally:
        for s in socks:
            s.close()
        banner = server.stderr[0].strip() if server.stderr else ""
        server.stop()
    return {"descriptor_limit": limit, "idle_sockets_opened": len(socks), "banner": banner,
            "new_requests": summary(rows),
            "goals": {"a new request served within 10 s": all(s == 200 and t <= 10 for s, t, _ in rows)}}


def drain_past_timeout(model: Path, drain_s: float) -> dict:
    bomb = scan_bomb(6000, 40000)
    server = ready(Server(model, ["--max-jpeg-scans", "1000000", "--decode-threads", "1",
                                  "--drain-timeout", str(drain_s)]))
    reply: list[tuple[int, float, str]] = []
    sender = threading.Thread(target=lambda: reply.append(post(server.url, bomb)))
    sender.start()
    time.sleep(1.0)  # the bomb is received (3.5 MB on loopback) and decoding
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(120)
    exit_s = time.monotonic() - t0
    sender.join(60)
    log = [line.strip() for line in server.stderr if "stopped after" in line or "Traceback" in line]
    return {"drain_timeout_s": drain_s, "bomb_bytes": len(bomb), "exit_code": code, "exit_seconds": round(exit_s, 3),
            "in_flight_reply": reply[0] if reply else None, "log": log,
            "goals": {"JSON 503 and exit within the timeout + 1 s":
                      bool(reply) and reply[0][0] == 503 and exit_s <= drain_s + 1}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="how long the good client uploads (part 1)")
    ap.add_argument("--model", type=Path, help="an edgecls ONNX model (default: MobileNetV2 224 px, random weights)")
    ap.add_argument("--out", type=Path, help="results file (default: benchmarks/results/serve_attacks_<env>.json)")
    args = ap.parse_args()
    from edgecls.runtime.bench.env import collect_environment

    env = collect_environment()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or export_mobilenetv2(Path(tmp) / "mobilenetv2_224.onnx")
        photos = [p.read_bytes() for p in write_photos(Path(tmp) / "photos", 8)]
        bombs = bombs_beside_good_uploads(model, photos, args.seconds)
        print("bombs:", json.dumps(bombs), flush=True)
        idle = idle_sockets(model, photos[0], 400, 300)
        print("idle:", json.dumps(idle), flush=True)
        drain = drain_past_timeout(model, 3.0)
        print("drain:", json.dumps(drain), flush=True)
    result = {
        "command": " ".join(["flock /tmp/edgecls-cpu.lock python benchmarks/serve_attacks.py", *sys.argv[1:]]),
        "model": str(args.model) if args.model else "MobileNetV2 1.0, 224 px, random weights, fp32",
        "server": "edgecls serve defaults unless a part names a flag",
        "scan_bombs_beside_good_uploads": bombs, "idle_sockets": idle, "drain_past_timeout": drain,
    }
    write_results("serve_attacks", result, env, load_before, args.out)


def write_results(stem: str, result: dict, env: Any, load_before: tuple[float, ...], out: Path | None) -> Path:
    """``result`` with the load average and the environment, written to ``out`` or to
    ``benchmarks/results/<stem>_<cpu>_<isa>_ort<version>_<date>.json``."""
    from edgecls.runtime.bench.env import environment_slug

    result = {**result, "load_average": {"before": [round(v, 2) for v in load_before],
                                         "after": [round(v, 2) for v in os.getloadavg()]},
              "environment": env.to_dict()}
    cpu, rest = environment_slug(env).split("_ort", 1)
    isa = isa_tag(env.isa) + ("-amx" if "amx_int8" in env.isa else "")
    out = out or RESULTS / f"{stem}_{cpu}_{isa}_ort{rest}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
