"""Model reloads and the health contract of ``edgecls serve`` (issue #31 item 3, serve side), on a real server.

/healthz reports the served file's name, sha256 and golden result (from a cache: no model call per probe); a model
failing its golden check is not served (exit 1, one line); SIGHUP and ``POST /v1/reload`` load the file again beside
the serving model and swap it in when it passes, a failing one keeps the old model answering, and clients posting
all along see no error and answers that switch once, from the old model's labels to the new one's. The new model
has another input size, so a batch mixing the two models' requests would fail.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_runtime import REPO
from fixtures_serve import make_colour_classifier, write_golden_beside

httpx = pytest.importorskip("httpx", reason="the serve tests need the dev extra (httpx)")
pytest.importorskip("starlette", reason="edgecls serve needs the serve extra: pip install 'edgecls[serve]'")

JPEG = {"Content-Type": "image/jpeg"}
RED = cv2.imencode(".jpg", np.full((48, 64, 3), (0, 0, 200), np.uint8))[1].tobytes()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepared(folder: Path, name: str, size: int, labels: tuple[str, ...], wrong_by: float = 0.0) -> Path:
    """A colour model with its golden file in ``folder``/``name`` (a staging folder: moved into place later)."""
    folder.mkdir(exist_ok=True)
    model = make_colour_classifier(folder / "model.onnx", size=size, labels=labels)
    write_golden_beside(model, wrong_by=wrong_by)
    return model


def install(staged: Path, model: Path) -> None:
    """Put a staged model and its golden file in place, each with an atomic rename (as an update would)."""
    copy = staged.with_name("copy.onnx")
    shutil.copy(staged.with_name("model.golden.npz"), copy.with_name("copy.golden.npz"))
    os.replace(copy.with_name("copy.golden.npz"), model.with_name("model.golden.npz"))
    shutil.copy(staged, copy)
    os.replace(copy, model)


def health(url: str) -> dict:
    return httpx.get(url + "/healthz", timeout=10).json()


def test_healthz_reports_the_served_file_its_sha256_and_golden_result(tmp_path, serve_process):
    served = prepared(tmp_path / "live", "model.onnx", 32, ("red", "green", "blue"))
    bare = make_colour_classifier(tmp_path / "bare.onnx")  # no golden file beside it
    with_golden = serve_process(str(served), "--token", "T")
    without = serve_process(str(bare))
    report = health(with_golden.url)  # no token needed: a probe
    assert report["status"] == "ok" and report["golden"] == "pass", report
    assert report["model"] == {"file": "model.onnx", "sha256": sha256(served)}
    assert health(without.url)["golden"] == "absent" and health(without.url)["model"]["sha256"] == sha256(bare)
    banner = "".join(with_golden.stderr)
    assert f"sha256 {sha256(served)[:12]}, golden pass" in banner, banner


def test_a_model_failing_its_golden_check_is_not_served(tmp_path):
    broken = prepared(tmp_path / "broken", "model.onnx", 32, ("red", "green", "blue"), wrong_by=30.0)
    proc = subprocess.run([sys.executable, "-m", "edgecls", "serve", str(broken), "--port", "0"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "golden check failed" in lines[0] and "Traceback" not in proc.stderr


def test_sighup_swaps_models_without_dropping_a_request_and_a_bad_one_keeps_the_old(tmp_path, serve_process):
    model = prepared(tmp_path / "live", "model.onnx", 32, ("red", "green", "blue"))
    newer = prepared(tmp_path / "newer", "model.onnx", 48, ("rouge", "vert", "bleu"))  # another input size
    broken = prepared(tmp_path / "broken", "model.onnx", 40, ("x", "y", "z"), wrong_by=30.0)
    server = serve_process(str(model), "--max-batch-size", "4", "--max-wait-ms", "5")
    stop = threading.Event()
    answers: list[list[str]] = [[] for _ in range(4)]

    def client(k: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/classify", content=RED, headers=JPEG)
                except httpx.HTTPError as e:  # a dropped connection is an answer too: a wrong one
                    answers[k].append(type(e).__name__)
                    continue
                answers[k].append(r.json()["top_k"][0]["label"] if r.status_code == 200 else f"{r.status_code}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        install(newer, model)
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while health(server.url)["model"]["sha256"] != sha256(newer):
            assert time.monotonic() < deadline and server.proc.poll() is None, "".join(server.stderr)
            time.sleep(0.05)
        time.sleep(0.5)
        install(broken, model)
        server.proc.send_signal(signal.SIGHUP)
        while "reload refused" not in "".join(server.stderr):
            assert time.monotonic() < deadline and server.proc.poll() is None, "".join(server.stderr)
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    report = health(server.url)
    assert report["model"]["sha256"] == sha256(newer) and report["golden"] == "pass", report
    assert report["reloads"]["done"] == 1 and report["reloads"]["refused"] == 1, report
    for seen in answers:
        assert set(seen) <= {"red", "rouge"}, sorted(set(seen))  # no error, no other model's label
        switch = seen.index("rouge")
        assert seen[:switch] == ["red"] * switch and seen[switch:] == ["rouge"] * (len(seen) - switch), seen
    log = "".join(server.stderr)
    assert "reloaded: now serving model.onnx" in log and "golden check failed" in log, log
    assert f"still serving model.onnx (sha256 {sha256(newer)[:12]})" in log and "Traceback" not in log, log


def test_post_reload_needs_the_token_and_is_not_taken_from_web_pages(tmp_path, serve_process):
    model = prepared(tmp_path / "live", "model.onnx", 32, ("red", "green", "blue"))
    server = serve_process(str(model), "--token", "T")
    with server.client() as c:
        anonymous = c.post("/v1/reload")
        from_a_page = c.post("/v1/reload", headers={"Authorization": "Bearer T", "Origin": "http://evil.example"})
        install(prepared(tmp_path / "newer", "model.onnx", 32, ("rouge", "vert", "bleu")), model)
        done = c.post("/v1/reload", headers={"Authorization": "Bearer T"})
        label = c.post("/v1/classify", content=RED, headers={**JPEG, "Authorization": "Bearer T"})
    assert anonymous.status_code == 401 and from_a_page.status_code == 403, (anonymous.text, from_a_page.text)
    assert done.status_code == 200 and done.json()["reloaded"] is True, done.text
    assert done.json()["model"] == {"file": "model.onnx", "sha256": sha256(model)}
    assert label.json()["top_k"][0]["label"] == "rouge"
    install(prepared(tmp_path / "broken", "model.onnx", 32, ("x", "y", "z"), wrong_by=30.0), model)
    with server.client(headers={"Authorization": "Bearer T"}) as c:
        refused = c.post("/v1/reload")
    assert refused.status_code == 422 and refused.json()["kind"] == "reload_refused", refused.text
    assert "golden check failed" in refused.json()["error"] and "still serving" in refused.json()["error"]


def test_without_a_token_reloads_are_answered_on_this_machine(tmp_path, serve_process):
    model = prepared(tmp_path / "live", "model.onnx", 32, ("red", "green", "blue"))
    server = serve_process(str(model))
    with server.client() as c:
        assert c.post("/v1/reload").status_code == 200  # from 127.0.0.1
        assert c.post("/v1/reload", headers={"Origin": "null"}).status_code == 403


def test_the_batcher_never_mixes_two_models_in_one_call(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from edgecls.runtime.inference.classifier import Classifier
    from edgecls.runtime.serve.batcher import DynamicBatcher

    small = Classifier(make_colour_classifier(tmp_path / "small.onnx", size=32), spin=False)
    large = Classifier(make_colour_classifier(tmp_path / "large.onnx", size=48, labels=("R", "G", "B")), spin=False)
    batcher = DynamicBatcher(max_batch=8, max_wait_s=0.05).start()
    sizes: list[int] = []
    batcher._on_batch = lambda n, s: sizes.append(n)
    image = np.full((20, 20, 3), (0, 0, 200), np.uint8)

    def one(i: int) -> str:
        clf = small if i % 3 else large
        x = clf.preprocess([image])[0]
        return batcher.submit(clf, x, 1).result(10).predictions[0].label

    expectations = [batcher.expect() for _ in range(24)]  # all announced: batches wait for each other's requests
    with ThreadPoolExecutor(24) as pool:
        labels = list(pool.map(one, range(24)))
    for e in expectations:
        e.withdraw()
    batcher.stop()
    assert labels == ["red" if i % 3 else "R" for i in range(24)], labels
    assert sum(sizes) == 24 and max(sizes) > 1, sizes
