"""``edgecls serve`` as a real process on loopback, talked to with a real HTTP client (httpx).

Every route; the rows are ``edgecls run --json``'s rows; every bad-input kind of docs/RELIABILITY.md posted as an
upload (4xx JSON naming it, never a 500); body, pixel and type limits; the token rule; dynamic batching under
concurrent clients; the live routes on an ffmpeg MJPEG stream; SIGTERM finishing the requests in flight.
"""

from __future__ import annotations

import json
import signal
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from fixtures_reliability import jsonl, run_cli
from fixtures_serve import ServeProcess, turning_colour_stream

httpx = pytest.importorskip("httpx", reason="the serve tests need the dev extra (httpx)")
pytest.importorskip("starlette", reason="edgecls serve needs the serve extra: pip install 'edgecls[serve]'")


def jpeg(bgr: tuple[int, int, int], size: tuple[int, int] = (48, 64)) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((*size, 3), bgr, np.uint8))
    assert ok
    return buf.tobytes()


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A 100-byte PNG whose header declares width x height RGB pixels (2.7 GB once decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def live_server(colour_model):
    from fixtures_streams import have_ffmpeg

    if not have_ffmpeg():
        pytest.skip("ffmpeg not installed (make stream-tools installs it from Debian)")
    stream = turning_colour_stream()
    server = ServeProcess(str(colour_model), "--source", stream.url, "--max-body-mb", "4", "--request-timeout", "1.5")
    yield server
    server.kill()
    stream.kill()


def test_classify_rows_are_run_json_rows(live_server, colour_model, tmp_path):
    photo = tmp_path / "greenish.jpg"
    photo.write_bytes(jpeg((30, 200, 40)))  # BGR: green dominates
    with live_server.client() as c:
        raw = c.post("/v1/classify", content=photo.read_bytes(), headers={"Content-Type": "image/jpeg"},
                     params={"name": "greenish.jpg"})
        multi = c.post("/v1/classify", files={"file": ("greenish.jpg", photo.read_bytes(), "image/jpeg")})
        two = c.post("/v1/classify", params={"top_k": 2}, files={"file": ("greenish.jpg", photo.read_bytes())})
    assert raw.status_code == multi.status_code == two.status_code == 200, raw.text
    cli = run_cli("run", str(colour_model), str(photo), "--json", "-k", "3")
    (expected,) = jsonl(cli.stdout)
    for row in (raw.json(), multi.json()):
        assert set(row) == set(expected) == {"source", "top_k", "latency_ms"}
        assert row["source"] == "greenish.jpg"
        assert row["top_k"] == expected["top_k"]
        assert row["top_k"][0]["label"] == "green"
    assert [p["label"] for p in two.json()["top_k"]] == [p["label"] for p in expected["top_k"][:2]]


def test_every_bad_file_of_the_reliability_table_is_a_4xx_naming_it(live_server, odd_images):
    with live_server.client() as c:
        for case, path in odd_images.bad.items():
            r = c.post("/v1/classify", files={"file": (path.name, path.read_bytes(), "image/jpeg")})
            assert r.status_code == 400, (case, r.status_code, r.text)
            body = r.json()
            assert body["kind"] == "bad_image" and body["error"].startswith(path.name), (case, body)
        for case, path in odd_images.good.items():
            r = c.post("/v1/classify", content=path.read_bytes(), headers={"Content-Type": "image/png"},
                       params={"name": path.name})
            if case == "huge_10000":  # 100 Mpx declared: refused from its header, before decoding
                assert r.status_code == 413 and r.json()["kind"] == "too_many_pixels", r.text
                assert "10000x10000" in r.json()["error"]
            else:
                assert r.status_code == 200, (case, r.text)
                assert len(r.json()["top_k"]) == 3


def test_limits_and_wrong_requests_are_named_4xx(live_server):
    big = b"\xff" * (5 * 1024 * 1024)
    with live_server.client() as c:
        cases = {
            "declared too large": c.post("/v1/classify", content=big, headers={"Content-Type": "image/jpeg"}),
            "chunked too large": c.post("/v1/classify", content=iter([big[:1 << 20]] * 5),
                                        headers={"Content-Type": "image/jpeg"}),
            "pixel bomb": c.post("/v1/classify", content=png_bomb(), headers={"Content-Type": "image/png"}),
            "json body": c.post("/v1/classify", json={"image": "cat.jpg"}),
            "text body": c.post("/v1/classify", content=b"hello", headers={"Content-Type": "text/plain"}),
            "no file part": c.post("/v1/classify", data={"note": "no file"}, files={"x": ("", b"")}),
            "broken multipart": c.post("/v1/classify", content=b"--zz\r\ngarbage",
                                       headers={"Content-Type": "multipart/form-data; boundary=zz"}),
            "empty body": c.post("/v1/classify", content=b"", headers={"Content-Type": "image/jpeg"}),
            "bad top_k": c.post("/v1/classify?top_k=zero", content=jpeg((0, 0, 255)),
                                headers={"Content-Type": "image/jpeg"}),
            "wrong method": c.get("/v1/classify"),
            "unknown route": c.get("/v1/nothing"),
        }
        metrics = c.get("/metrics").text
    expected = {
        "declared too large": (413, "body_too_large"), "chunked too large": (413, "body_too_large"),
        "pixel bomb": (413, "too_many_pixels"), "json body": (415, "unsupported_type"),
        "text body": (415, "unsupported_type"), "no file part": (400, "missing_file"),
        "broken multipart": (400, None), "empty body": (400, "bad_image"), "bad top_k": (422, "bad_parameter"),
        "wrong method": (405, "method_not_allowed"), "unknown route": (404, "not_found"),
    }
    for name, r in cases.items():
        status, kind = expected[name]
        assert r.status_code == status, (name, r.status_code, r.text)
        body = r.json()
        assert body["error"] and "\n" not in body["error"], (name, body)
        if kind is not None:
            assert body["kind"] == kind, (name, body)
    assert "30000x30000" in cases["pixel bomb"].json()["error"]
    assert "text/plain" in cases["text body"].json()["error"]
    assert 'edgecls_errors_total{kind="body_too_large"} 2.0' in metrics
    assert 'status="500"' not in metrics


def test_a_body_that_stalls_times_out_with_a_504(live_server):
    import socket

    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                     b"Content-Length: 100000\r\n\r\n" + b"\xff\xd8" * 10)  # then nothing more
        t0 = time.monotonic()
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert 1.0 < time.monotonic() - t0 < 8
    head, body = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 504")
    assert json.loads(body)["kind"] == "timeout"


def test_model_health_ready_metrics_and_page(live_server):
    with live_server.client() as c:
        model = c.get("/v1/model").json()
        health, ready, page = c.get("/healthz"), c.get("/readyz"), c.get("/")
        c.post("/v1/classify", content=jpeg((200, 0, 0)), headers={"Content-Type": "image/jpeg"})
        metrics = c.get("/metrics")
    assert model["contract"]["labels"] == ["red", "green", "blue"]
    assert model["variant"] == "fp32" and model["providers"]["used"] == ["CPUExecutionProvider"]
    assert model["providers"]["fallback"] is False and model["batch"] == "dynamic"
    assert model["live"]["source"].startswith("http://127.0.0.1:")
    assert health.status_code == 200 and ready.status_code == 200 and ready.json()["ready"] is True
    assert page.status_code == 200 and "text/html" in page.headers["content-type"] and "/v1/classify" in page.text
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in ("edgecls_http_requests_total", "edgecls_errors_total", "edgecls_classify_seconds_bucket",
                 "edgecls_batch_size_bucket", "edgecls_queue_depth", "edgecls_frame_age_seconds_bucket",
                 "edgecls_last_frame_age_seconds"):
        assert name in metrics.text, name


@pytest.mark.stream
def test_live_routes_follow_the_turning_stream(live_server):
    with live_server.client() as c:
        deadline = time.monotonic() + 10
        while (r := c.get("/v1/latest")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        first = r.json()
        assert set(first) == {"source", "frame", "top_k", "latency_ms", "age_ms"}, first
        assert first["age_ms"] < 2000
        events, labels = [], set()
        with c.stream("GET", "/v1/events") as s:
            for line in s.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    labels.add(events[-1]["top_k"][0]["label"])
                if len(labels) >= 2 and len(events) >= 5:
                    break
        frames = [e["frame"] for e in events]
        assert frames == sorted(frames) and len(set(frames)) == len(frames)
        assert len(labels) >= 2  # the hue turns: the dominant colour, hence the label, changes
        with c.stream("GET", "/v1/stream") as s:
            assert s.headers["content-type"].startswith("multipart/x-mixed-replace")
            data = b""
            for chunk in s.iter_bytes():
                data += chunk
                if data.count(b"--frame") >= 3:
                    break
    part = data.split(b"--frame")[1]
    image = cv2.imdecode(np.frombuffer(part.split(b"\r\n\r\n", 1)[1], np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (120, 160, 3)


def test_no_live_source_and_token_rule(colour_model, serve_process):
    server = serve_process(str(colour_model), "--token", "s3cret")
    picture = jpeg((0, 0, 220))
    with server.client() as c:
        refused = [
            c.get("/v1/model"),
            c.post("/v1/classify", content=picture, headers={"Content-Type": "image/jpeg"}),
            c.get("/v1/model", headers={"Authorization": "Bearer wrong"}),
            c.get("/v1/latest", params={"token": "wrong"}),
        ]
        ok = c.post("/v1/classify", content=picture,
                    headers={"Content-Type": "image/jpeg", "Authorization": "Bearer s3cret"})
        by_query = c.get("/v1/model", params={"token": "s3cret"})
        no_live = c.get("/v1/latest", headers={"Authorization": "Bearer s3cret"})
        open_routes = [c.get(p).status_code for p in ("/healthz", "/readyz", "/metrics", "/")]
    for r in refused:
        assert r.status_code == 401 and r.json()["kind"] == "unauthorized", r.text
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert ok.status_code == 200 and ok.json()["top_k"][0]["label"] == "red"
    assert by_query.status_code == 200 and by_query.json()["live"] is None
    assert no_live.status_code == 404 and no_live.json()["kind"] == "no_live_source"
    assert open_routes == [200, 200, 200, 200]


def test_a_non_loopback_bind_needs_a_token(colour_model):
    # Refused before anything binds: the test never listens beyond loopback.
    r = run_cli("serve", str(colour_model), "--host", "0.0.0.0", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--token" in r.stderr and "--insecure" in r.stderr and "0.0.0.0" in r.stderr


def test_concurrent_requests_are_batched_and_a_missing_camera_is_named(batching_model, serve_process):
    server = serve_process(str(batching_model), "--max-batch-size", "8", "--max-wait-ms", "20", "--threads", "1",
                           "--camera", "7")
    pictures = [jpeg((i * 20, 100, 200 - i * 20)) for i in range(8)]

    def post(i: int) -> int:
        with server.client() as c:
            return c.post("/v1/classify", content=pictures[i % 8], headers={"Content-Type": "image/jpeg"}).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(post, range(16)))
    with server.client() as c:
        metrics = c.get("/metrics").text
        latest, model = c.get("/v1/latest"), c.get("/v1/model").json()
    assert latest.status_code == 503 and latest.json()["kind"] == "no_result_yet"
    assert "camera:7: no such camera" in latest.json()["error"] and "no such camera" in model["live"]["error"]
    assert statuses == [200] * 16
    count = float(metrics.split("edgecls_batch_size_count ")[1].split()[0])
    total = float(metrics.split("edgecls_batch_size_sum ")[1].split()[0])
    assert total == 16 and count < 16, (count, total)  # fewer model calls than images: batches formed


def test_sigterm_finishes_the_requests_in_flight(batching_model, serve_process):
    server = serve_process(str(batching_model), "--max-batch-size", "1", "--threads", "1")
    picture = jpeg((10, 10, 200), size=(96, 96))
    results: list[int] = []
    release = threading.Event()

    def body():  # half the picture, then the rest only after SIGTERM: the request cannot finish before it
        yield picture[: len(picture) // 2]
        release.wait(30)
        yield picture[len(picture) // 2 :]

    def post() -> None:
        with server.client() as c:
            results.append(c.post("/v1/classify", content=body(), headers={"Content-Type": "image/jpeg"})
                           .status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    with server.client() as c:  # all six are being received: in flight for certain
        deadline = time.monotonic() + 10
        while "edgecls_classify_in_flight 6.0" not in c.get("/metrics").text:
            assert time.monotonic() < deadline, "the six requests never arrived"
            time.sleep(0.02)
    server.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while True:  # wait until the drain has begun (new connections refused), not a guessed sleep
        try:
            httpx.get(server.url + "/healthz", timeout=1)
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
            break  # refused, or reset: a connect that raced the listening socket's close lands in its backlog
        assert time.monotonic() < deadline, "SIGTERM never stopped new connections"
        time.sleep(0.02)
    # Draining, not gone: the process waits for the six held-open requests, which have not finished.
    assert server.proc.poll() is None and results == []
    release.set()
    for t in threads:
        t.join(30)
    assert server.proc.wait(30) == 0
    assert results == [200] * 6
    assert any("stopped after" in line and "in-flight requests were finished" in line for line in server.stderr), \
        server.stderr


def test_decoding_in_the_model_thread_keeps_bad_uploads_to_themselves(colour_model, serve_process, odd_images):
    server = serve_process(str(colour_model), "--decode-threads", "0", "--max-wait-ms", "50")
    uploads = [("red.jpg", jpeg((0, 0, 200))), *[(p.name, p.read_bytes()) for p in odd_images.bad.values()],
               ("bomb.png", png_bomb()), ("blue.jpg", jpeg((200, 0, 0)))]

    def post(item: tuple[str, bytes]):
        with server.client() as c:
            return c.post("/v1/classify", files={"file": item})

    with ThreadPoolExecutor(len(uploads)) as pool:  # together, so good and bad uploads share batches
        replies = list(pool.map(post, uploads))
    assert replies[0].status_code == 200 and replies[0].json()["top_k"][0]["label"] == "red"
    assert replies[-1].status_code == 200 and replies[-1].json()["top_k"][0]["label"] == "blue"
    assert [r.status_code for r in replies[1:-2]] == [400] * len(odd_images.bad)
    assert replies[-2].status_code == 413 and replies[-2].json()["kind"] == "too_many_pixels"


def test_contract_flags_override_the_embedded_contract(colour_model, serve_process):
    # --labels and --color-order reach the served Classifier: a red picture read as BGR lands on the third class.
    server = serve_process(str(colour_model), "--labels", "rouge,vert,bleu", "--color-order", "bgr")
    with server.client() as c:
        model = c.get("/v1/model").json()
        top = c.post("/v1/classify", content=jpeg((0, 0, 220)), headers={"Content-Type": "image/jpeg"}).json()
    assert model["contract"]["labels"] == ["rouge", "vert", "bleu"] and model["contract"]["color_order"] == "BGR"
    assert top["top_k"][0]["label"] == "bleu"
