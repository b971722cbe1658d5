"""Issue #31 item 3 measured: 1,000 requests from 4 clients across a model reload and a refused reload, against a
real ``edgecls serve`` on loopback (run under ``flock /tmp/edgecls-cpu.lock``).

The served path starts as model A (MobileNetV2 width 1.0, 224 px); after 300 answers model B (MobileNetV2 width
0.5, 192 px: another input size and other answers) is moved into place with its golden file and the server gets
SIGHUP; after 650 answers B with a golden file it fails is moved into place and the server gets SIGHUP again.
Each model's golden file is written by export's own code (export/golden.py), as ``edgecls export`` writes it.
After each SIGHUP the script waits for /healthz to report the reload's outcome (clients keep posting meanwhile).
Every answer is matched to A's or B's answer for that photo (computed in this process with the same runtime).
Goals: 0 errors, each client's answers switch once, from A's to B's, and never back or to the refused model, and
the failing model refused. With ``--before PYTHON`` (e.g. /work/main/.venv/bin/python) the same run against that
interpreter's edgecls.

Writes ``benchmarks/results/serve_reload_<cpu>_<isa>_ort<version>_<date>.json`` (or ``--out``).

    flock /tmp/edgecls-cpu.lock python benchmarks/serve_reload.py [--requests 1000] [--input-size 224 192] \
        [--before PYTHON]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from runtime_overhead import export_mobilenetv2, write_photos  # noqa: E402
from serve_attacks import ready  # noqa: E402
from serve_load import Server, add_before_and_out, environment_now, interpreters, publish  # noqa: E402

JPEG = {"Content-Type": "image/jpeg"}


def staged(folder: Path, size: int, arch: str, photos: list[bytes]) -> Path:
    """A model with its golden file (export's, of the photos) in ``folder``, to be moved into place later."""
    folder.mkdir(parents=True)
    images = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR) for p in photos]
    return export_mobilenetv2(folder / "model.onnx", size=size, arch=arch, golden_images=images)


def failing_copy(model: Path, folder: Path, wrong_by: float = 30.0) -> Path:
    """``model`` with a golden file it fails: its own, the first class's logits shifted by ``wrong_by``."""
    from edgecls.export.golden import write_golden
    from edgecls.runtime.device.golden_file import golden_path_for

    folder.mkdir(parents=True)
    copy = folder / model.name
    shutil.copy(model, copy)
    with np.load(golden_path_for(model)) as npz:
        golden = dict(npz)
    golden["logits"][:, 0] += wrong_by
    write_golden(golden_path_for(copy), golden)
    return copy


def install(model: Path, live: Path) -> None:
    """The golden file, then the model, each copied beside and renamed into place (an update's atomic swap)."""
    for src, dst in ((model.with_name("model.golden.npz"), live.with_name("model.golden.npz")), (model, live)):
        tmp = dst.with_name(dst.name + ".new")
        shutil.copy(src, tmp)
        os.replace(tmp, dst)


def reload_record(server: Server) -> dict | None:
    """/healthz's ``reloads`` (``{"done", "refused", "last"}``); None once the server no longer answers it."""
    if server.proc.poll() is not None:
        return None
    try:
        return httpx.get(server.url + "/healthz", timeout=5).json()["reloads"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def expected_answers(model: Path, photos: list[bytes]) -> list[tuple[str, float]]:
    from edgecls.runtime.images.decode import decode_bytes
    from edgecls.runtime.inference.classifier import Classifier
    from edgecls.runtime.inference.preprocess import decode_floor

    clf = Classifier(model, spin=False)
    out = []
    for data in photos:
        best = clf.predict(decode_bytes(data, "photo", decode_floor(clf.contract)), top_k=1)[0]
        out.append((best.label, best.score))
    return out


def run(live: Path, new: Path, bad: Path, photos: list[bytes], answers: dict[str, list[tuple[str, float]]],
        requests: int, python: str | None) -> dict:
    server = ready(Server(live, ["--threads", "2"], python=python))
    done = 0
    lock = threading.Lock()
    rows: list[tuple[int, int, str, float]] = []  # (client, status or 0, which model answered, seconds)
    events: dict[str, float] = {}
    outcomes: dict[str, str] = {}  # each reload's message, as /healthz reports it

    def which(i: int, body: dict) -> str:
        label, score = body["top_k"][0]["label"], body["top_k"][0]["score"]
        for name, expected in answers.items():
            if expected[i][0] == label and abs(expected[i][1] - score) < 1e-3:
                return name
        return "other"

    def client(k: int) -> None:
        nonlocal done
        with httpx.Client(base_url=server.url, timeout=60) as c:
            while True:
                with lock:
                    if done >= requests:
                        return
                    i = done
                    done += 1
                t0 = time.monotonic()
                try:
                    r = c.post("/v1/classify", content=photos[i % len(photos)], headers=JPEG)
                    status = r.status_code
                    model = which(i % len(photos), r.json()) if status == 200 else r.json().get("kind", "")
                except (httpx.HTTPError, ValueError) as e:
                    status, model = 0, type(e).__name__
                rows.append((k, status, model, time.monotonic() - t0))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    for at, model, name in ((0.3, new, "B"), (0.65, bad, "refused")):
        while done < at * requests and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        install(model, live)
        before = reload_record(server)
        events[f"sighup_{name}"] = time.monotonic() - t_start
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGHUP)
        # how long until /healthz reports the reload's outcome (load + golden check + warm-up, beside the serving
        # model): B serving, or the failing model refused
        deadline = time.monotonic() + 120
        while before is not None and time.monotonic() < deadline:
            now = reload_record(server)
            if now is None:
                break
            if now["done"] + now["refused"] > before["done"] + before["refused"]:
                events[f"{name}_reload_ended"] = time.monotonic() - t_start
                outcomes[name] = now["last"]["message"]
                break
            time.sleep(0.02)
    for t in threads:
        t.join(600)
    alive = server.proc.poll() is None
    health = httpx.get(server.url + "/healthz", timeout=10).json() if alive else None
    log = [line.strip() for line in server.stderr if "reload" in line or "Traceback" in line or "error" in line]
    if alive:
        server.stop()
    per_client = {k: [m for c, _, m, _ in rows if c == k] for k in range(4)}  # each client's answers in order
    monotone = all(seq == sorted(seq, key=lambda m: {"A": 0, "B": 1}.get(m, 2)) and set(seq) <= {"A", "B"}
                   for seq in per_client.values())
    errors = sum(1 for _, status, _, _ in rows if status != 200)
    seconds = sorted(s for *_, s in rows)
    return {
        "requests": len(rows), "errors": errors,
        "answered_by": {m: sum(1 for r in rows if r[2] == m) for m in sorted({r[2] for r in rows})},
        "each_client_switched_once_from_A_to_B": monotone,
        "latency_ms": {"p50": round(statistics.median(seconds) * 1e3, 1),
                       "p99": round(seconds[int(0.99 * (len(seconds) - 1))] * 1e3, 1),
                       "max": round(seconds[-1] * 1e3, 1)} if seconds else None,
        "events_s": {k: round(v, 3) for k, v in events.items()}, "reload_outcomes": outcomes,
        "process_alive_at_end": alive, "healthz_at_end": health, "log": log,
        "goals": {"0 errors": errors == 0, "answers switch to the new model's": monotone,
                  "the failing model refused": outcomes.get("refused", "").startswith("reload refused")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--input-size", type=int, nargs=2, default=(224, 192), metavar=("A", "B"),
                    help="input sizes of models A and B (default 224 192; they must differ: a batch mixing the two "
                    "models' requests would fail)")
    add_before_and_out(ap, "serve_reload")
    args = ap.parse_args()
    size_a, size_b = args.input_size
    if size_a == size_b:
        ap.error("--input-size: A and B must differ")
    env, load_before = environment_now()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos = [p.read_bytes() for p in write_photos(root / "photos", 8)]
        a = staged(root / "a", size_a, "mobilenetv2", photos)
        b = staged(root / "b", size_b, "mobilenetv2_050", photos)
        bad = failing_copy(b, root / "bad")
        answers = {"A": expected_answers(a, photos), "B": expected_answers(b, photos)}
        for label, python in interpreters(args.before).items():
            live = root / label.replace(" ", "_") / "model.onnx"
            live.parent.mkdir()
            install(a, live)
            results[label] = run(live, b, bad, photos, answers, args.requests, python)
            print(f"[{label}] {json.dumps({k: v for k, v in results[label].items() if k != 'log'})}", flush=True)
    result = {
        "command": " ".join(["flock /tmp/edgecls-cpu.lock python benchmarks/serve_reload.py", *sys.argv[1:]]),
        "models": {"A": f"MobileNetV2 1.0, {size_a} px, random weights",
                   "B": f"MobileNetV2 0.5, {size_b} px, random weights",
                   "refused": "B with a golden file it fails (logits of class 0 off by 30)"},
        "clients": "4 threads, one keep-alive httpx connection each, 640x480 JPEGs", "server": "--threads 2",
        "runs": results,
    }
    publish("serve_reload", result, env, load_before, args.out)


if __name__ == "__main__":
    main()
