"""Soak the live loop: thousands of frames of a looping loopback stream through ``edgecls run``'s own code
path (FrameSource capture thread -> source loop -> Classifier -> sink), with the stream server killed and
restarted every ``--restart-every`` results, and the process RSS sampled throughout.

A leak anywhere in capture, reconnect (VideoCapture open/release), preprocessing, inference or output shows
up as RSS that keeps climbing; a healthy loop is flat after warm-up.

    flock /tmp/edgecls-cpu.lock python benchmarks/soak_live.py --frames 5000 --restart-every 1000

Writes ``benchmarks/results/soak_live_<cpu>_ort<version>_<date>.json`` (all samples) and prints a summary.
The stream is ffmpeg's ``testsrc2`` served as MJPEG over HTTP on 127.0.0.1 (no ``-re``: frames come as fast
as the consumer takes them, so a soak of thousands of frames takes seconds, not minutes). tests/
test_reliability_soak.py runs the same function for a few hundred frames.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from edgecls.runtime.inference.classifier import Classifier
from edgecls.runtime.sources.live_capture import CaptureSettings, quiet_backend_logs
from edgecls.runtime.sources.records import ErrorRecord, Record, RunSummary
from edgecls.runtime.sources.source_loop import LoopOptions, run_sources
from edgecls.runtime.sources.source_specs import SourceSpec

RESULTS = Path(__file__).resolve().parent / "results"


def tiny_classifier(path: Path, size: int = 64) -> Path:
    """A small real conv classifier ONNX (``float32[N, 3, size, size]`` -> ``float32[N, 3]``) with a contract."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgecls.runtime.contract.model_contract import METADATA_KEY, ModelContract

    rng = np.random.default_rng(0)
    f = TensorProto.FLOAT
    inits = [numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.2).astype(np.float32), "w"),
             numpy_helper.from_array((rng.standard_normal((3, 8)) * 0.2).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["fl"]), helper.make_node("Gemm", ["fl", "fc"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "soak", [helper.make_tensor_value_info("input", f, ["batch", 3, size, size])],
                              [helper.make_tensor_value_info("logits", f, ["batch", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = ModelContract(labels=("a", "b", "c"), input_size=(size, size)).to_json()
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int, size: str = "320x240", seconds: int = 600) -> subprocess.Popen:
    """ffmpeg serving an endless (bounded by ``seconds``) MJPEG test pattern to one client on 127.0.0.1."""
    url = f"http://127.0.0.1:{port}/soak.mjpg"
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
         "-t", str(seconds), "-q:v", "5", "-f", "mpjpeg", "-listen", "1", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


@dataclass
class SoakSink:
    """Counts results and samples this process's RSS every ``sample_every`` results."""

    sample_every: int
    on_result: Any = None
    results: int = 0
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    samples: list[tuple[int, float, float]] = field(default_factory=list)  # (results, seconds, RSS MB)
    _t0: float = field(default_factory=time.perf_counter)
    _proc: Any = field(default_factory=psutil.Process)
    _noticed: threading.Condition = field(default_factory=threading.Condition)

    def wait_for_notice(self, seen: int, timeout: float) -> bool:
        """Block until more than ``seen`` notices (reconnects) have arrived; False on timeout."""
        with self._noticed:
            return self._noticed.wait_for(lambda: len(self.notices) > seen, timeout)

    def sample(self) -> None:
        self.samples.append((self.results, time.perf_counter() - self._t0, self._proc.memory_info().rss / 2**20))

    def result(self, record: Record) -> None:
        self.results += 1
        if self.results % self.sample_every == 0:
            self.sample()
        if self.on_result is not None:
            self.on_result(self.results)

    def error(self, record: ErrorRecord) -> None:
        self.errors.append(record.error)

    def notice(self, source: str, message: str) -> None:  # called on the capture thread
        with self._noticed:
            self.notices.append(message)
            self._noticed.notify_all()

    def source_done(self, source: str) -> None:
        pass

    def close(self, summary: RunSummary) -> None:
        self.sample()


@dataclass
class SoakResult:
    frames: int
    results: int
    restarts: int
    reconnects: int
    dropped: int
    errors: list[str]
    elapsed_s: float
    rss_start_mb: float  # after warm-up (the first 10 % of results): allocator pools and sessions are settled
    rss_end_mb: float
    rss_max_mb: float
    samples: list[tuple[int, float, float]]

    @property
    def growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_start_mb


def soak(model: Path, frames: int, restart_every: int | None = None, sample_every: int = 50) -> SoakResult:
    """Run the live loop for ``frames`` results, restarting the server every ``restart_every`` results."""
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is needed (apt-get install ffmpeg)")
    quiet_backend_logs()
    port = free_port()
    server = [serve(port)]
    restarts = 0
    lock = threading.Lock()

    def maybe_restart(n: int) -> None:
        nonlocal restarts
        if restart_every and n % restart_every == 0 and n < frames:
            with lock:  # the camera "reboots": connection dropped, back on the same port
                seen = len(sink.notices)
                server[0].kill()
                server[0].wait()
                server[0] = serve(port)
                restarts += 1
                # The socket can hold a couple of hundred frames of the dead server's stream; without this wait the
                # next restart can kill a server the reader never reached, and two restarts show as one reconnect.
                # The capture thread drains those frames, meets EOF and says "reconnecting" while this result waits.
                if not sink.wait_for_notice(seen, timeout=60):
                    sink.errors.append(f"restart {restarts}: the reader never noticed the lost stream in 60 s")

    sink = SoakSink(sample_every, on_result=maybe_restart)
    clf = Classifier(model, spin=False, threads=1)
    options = LoopOptions(top_k=1, batch_size=1, max_frames=frames,
                         capture=CaptureSettings(retries=20, backoff=0.1, backoff_max=1.0, open_timeout=3,
                                                 read_timeout=3))
    time.sleep(0.3)  # let ffmpeg listen
    try:
        summary = run_sources(clf, [SourceSpec("stream", f"http://127.0.0.1:{port}/soak.mjpg", "soak")], [],
                              sink, options)
    finally:
        server[0].kill()
        server[0].wait()
    stats = summary.per_source["soak"]
    warm = max(1, len(sink.samples) // 10)
    rss = [s[2] for s in sink.samples]
    return SoakResult(frames=frames, results=sink.results, restarts=restarts, reconnects=stats.reconnects,
                      dropped=stats.dropped, errors=sink.errors, elapsed_s=summary.elapsed_s,
                      rss_start_mb=rss[warm - 1], rss_end_mb=rss[-1], rss_max_mb=max(rss), samples=sink.samples)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=5000)
    p.add_argument("--restart-every", type=int, default=1000, help="Kill/restart the server every N results.")
    p.add_argument("--model", type=Path, default=None, help="ONNX classifier (default: a small generated one).")
    p.add_argument("--out", type=Path, default=None, help="Result JSON (default: benchmarks/results/...).")
    args = p.parse_args(argv)
    from edgecls.runtime.bench.env import collect_environment, environment_slug

    work = Path("/tmp") / f"edgecls-soak-{free_port()}"
    work.mkdir(parents=True, exist_ok=True)
    model = args.model or tiny_classifier(work / "soak64.onnx")
    result = soak(model, args.frames, args.restart_every, sample_every=max(1, args.frames // 100))
    env = collect_environment()
    out = args.out or RESULTS / f"soak_live_{environment_slug(env)}.json"
    from edgecls.runtime.atomic import atomic_write_text

    record = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]), "model": str(model),
              **asdict(result), "growth_mb": result.growth_mb, "environment": env.to_dict()}
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    fps = result.results / result.elapsed_s if result.elapsed_s else float("nan")
    print(f"{result.results} frames in {result.elapsed_s:.1f} s ({fps:.0f}/s), {result.restarts} server restarts, "
          f"{result.reconnects} reconnects, {result.dropped} frames skipped, {len(result.errors)} errors")
    print(f"RSS {result.rss_start_mb:.1f} MB after warm-up -> {result.rss_end_mb:.1f} MB at the end "
          f"(max {result.rss_max_mb:.1f} MB, growth {result.growth_mb:+.1f} MB); written to {out}")
    return 0 if not result.errors and result.results == args.frames else 1


if __name__ == "__main__":
    raise SystemExit(main())
