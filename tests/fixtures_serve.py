"""Fixtures of the serve tests: a model whose label really follows the picture, an ffmpeg stream whose colour
turns, and ``edgecls serve`` started as a real process on a free loopback port.

The colour model: ``float32[N, 3, s, s]`` (RGB, pixel / 255, no mean/std) -> GlobalAveragePool -> Flatten ->
Gemm with 20 x identity -> logits ``[N, 3]``: the best label is the image's dominant colour channel (red, green
or blue), so live labels change when the stream's hue turns and an uploaded picture gets a predictable label.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fixtures_runtime import REPO, add_contract, make_onnx
from fixtures_streams import MjpegServer, have_ffmpeg

from edgecls.runtime.contract.model_contract import ModelContract

COLOURS = ("red", "green", "blue")


def make_colour_classifier(path: Path, size: int = 32, labels: tuple[str, ...] = COLOURS) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    f = TensorProto.FLOAT
    make_onnx(
        path,
        [helper.make_node("GlobalAveragePool", ["input"], ["gap"]),
         helper.make_node("Flatten", ["gap"], ["flat"]),
         helper.make_node("Gemm", ["flat", "w"], ["logits"])],
        [helper.make_tensor_value_info("input", f, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", f, ["batch", 3])],
        [numpy_helper.from_array(np.eye(3, dtype=np.float32) * 20, "w")],
    )
    add_contract(path, ModelContract(labels=labels, input_size=(size, size), resize_mode="stretch",
                                     mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                                     provenance={"arch": "colour-test", "variant": "fp32"}))
    return path


def write_golden_beside(model: Path, wrong_by: float = 0.0) -> Path:
    """``model.golden.npz`` in export's format (runtime/device/golden_file.py): 8 coloured 64x64 images, their inputs
    and the model's own logits as the expected ones, plus ``wrong_by`` added to the first class (a golden file the
    model fails when it is large)."""
    from edgecls.runtime.device.golden_file import golden_path_for
    from edgecls.runtime.inference.classifier import Classifier

    clf = Classifier(model, spin=False)
    rng = np.random.default_rng(0)
    images = np.stack([np.full((64, 64, 3), rng.integers(0, 256, 3), np.uint8) for _ in range(8)])
    inputs = clf.preprocess(list(images))
    logits = clf.logits_batch(inputs).astype(np.float32)
    logits[:, 0] += wrong_by
    path = golden_path_for(model)
    np.savez_compressed(path, images=images, inputs=inputs, logits=logits, labels=np.array(clf.labels))
    return path


@pytest.fixture(scope="session")
def batching_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Slow enough (full-resolution convs, ~10 ms per image) that concurrent requests overlap in the queue."""
    from fixtures_runtime import make_slow_classifier

    return make_slow_classifier(tmp_path_factory.mktemp("serve") / "slow96.onnx", size=96, width=16)


@pytest.fixture(scope="session")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_colour_classifier(tmp_path_factory.mktemp("serve") / "colour.onnx")


def turning_colour_stream(fps: int = 30, seconds: int = 120) -> MjpegServer:
    """ffmpeg serving MJPEG on loopback (one client): a red picture whose hue turns a full circle every 3 s, so
    its dominant channel goes red -> green -> blue -> red."""
    return MjpegServer(seconds=seconds, pattern=f"color=c=red:s=160x120:r={fps},hue=h=t*120")


@pytest.fixture
def colour_stream() -> Iterator[MjpegServer]:
    if not have_ffmpeg():
        pytest.skip("ffmpeg not installed (make stream-tools installs it from Debian)")
    stream = turning_colour_stream()
    yield stream
    stream.kill()


_LISTENING = re.compile(r"edgecls serve: (http://127\.0\.0\.1:\d+)/")


class ServeProcess:
    """``python -m edgecls serve ARGS --port 0``; :attr:`url` once it listens and /readyz says ready."""

    def __init__(self, *args: str, ready_timeout: float = 30.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgecls", "serve", *args, "--port", "0"], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        self._url = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True).start()
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.kill()  # never leave a server behind when start-up fails
            raise

    def _wait_ready(self, timeout: float) -> None:
        if not self._url.wait(timeout):
            raise RuntimeError(f"edgecls serve did not start: {''.join(self.stderr)}")
        import httpx  # the dev extra; imported here so the rest of the suite loads without it

        deadline = time.monotonic() + timeout
        while httpx.get(self.url + "/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("edgecls serve never became ready")
            time.sleep(0.05)

    def _read(self, pipe, lines: list[str]) -> None:
        for line in pipe:
            lines.append(line)
            m = _LISTENING.search(line)
            if m and not self._url.is_set():
                self.url = m.group(1)
                self._url.set()

    def client(self, **kw):  # -> httpx.Client
        import httpx

        return httpx.Client(base_url=self.url, timeout=30, **kw)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        print("edgecls serve stderr:", "".join(self.stderr), sep="\n")  # shown by pytest when a test fails


@pytest.fixture
def serve_process() -> Iterator:
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        p = ServeProcess(*args)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()
