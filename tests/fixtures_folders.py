"""Folders other programs fill, as an attacker would fill them, and a watch on the process that reads them.

- :func:`colour_model`: a real 32 px ONNX classifier (answer: the dominant colour channel).
- :func:`hostile_folder`: real images beside a named pipe, a link to ``/dev/zero``, a dangling link and a
  sparse file over the size cap, all with image suffixes, so the folder walk hands every one of them over.
- :func:`watch`: a subprocess run to the end with its wall time and peak RSS; killed past a time or RSS limit
  (a reader of ``/dev/zero`` grows by gigabytes a second: the test must not take the machine down with it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from fixtures_runtime import LABELS, REPO, add_contract, make_onnx

from edgecls.runtime.contract.model_contract import ModelContract

#: Bad entries of :func:`hostile_folder` and the words their error row must contain.
HOSTILE = {
    "0pipe.jpg": "named pipe",  # sorts first: a reader that blocks on it blocks before any result
    "zero.jpg": "character device",
    "dangling.png": "dangling symbolic link",
    "huge.jpg": "larger than the file size limit (100 MB)",
}
HUGE_BYTES = 150_000_000  # sparse: no disk used, over the 100 MB default cap


def colour_model(path: Path) -> Path:
    """``float32[N, 3, 32, 32]`` -> GlobalAveragePool -> Flatten -> Gemm(8 * I) -> ``float32[N, 3]`` logits.

    The labels vary across real photos and the scores depend on every step of the preprocessing.
    """
    from onnx import TensorProto, helper, numpy_helper

    make_onnx(
        path,
        [helper.make_node("GlobalAveragePool", ["input"], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"]),
         helper.make_node("Gemm", ["flat", "w"], ["logits"], transB=1)],
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(8 * np.eye(3, dtype=np.float32), "w")],
    )
    add_contract(path, ModelContract(labels=LABELS, input_size=(32, 32)))
    return path


def write_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` small real JPEG/PNG images (random colour fields, 40-80 px) named ``img_000.jpg`` ..."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        side = int(rng.integers(40, 81))
        image = np.full((side, side, 3), rng.integers(0, 256, 3), np.uint8)
        image[: side // 2] //= 2
        p = folder / f"img_{i:03d}{'.png' if i % 3 == 0 else '.jpg'}"
        assert cv2.imwrite(str(p), image)
        paths.append(p)
    return paths


def hostile_folder(folder: Path, images: int = 2) -> Path:
    """Real images plus every entry of :data:`HOSTILE` (a FIFO, /dev/zero, a dangling link, a sparse 150 MB file)."""
    write_images(folder, images)
    os.mkfifo(folder / "0pipe.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    with open(folder / "huge.jpg", "wb") as f:
        f.truncate(HUGE_BYTES)
    return folder


@dataclass
class Watched:
    returncode: int | None  # None: killed by the watch
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float
    killed: str | None  # why the watch killed it


def _status_mb(pid: int, field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (the peak so far) of ``pid``'s own memory, in MB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _popen(argv: list[str], stdin: int | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DISPLAY", None)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
                            stdin=stdin)


def start(*args: str) -> subprocess.Popen[str]:
    """``python -m edgecls ARGS`` in the background."""
    return _popen([sys.executable, "-m", "edgecls", *args])


def watch(*args: str, timeout: float = 120.0, rss_limit_mb: float = 500.0) -> Watched:
    """Run ``python -m edgecls ARGS`` under :func:`watch_argv`."""
    return watch_argv([sys.executable, "-m", "edgecls", *args], timeout, rss_limit_mb)


def watch_argv(argv: list[str], timeout: float = 120.0, rss_limit_mb: float = 500.0) -> Watched:
    """Run ``argv``; kill it past ``timeout`` or ``rss_limit_mb`` (polled every 20 ms). The timeout catches a run
    that never ends (a read blocked on a fifo), so it is generous: a loaded box only makes a run slower.

    The peak RSS is the kernel's high-water mark of the child's own memory (``VmHWM``), read at every poll.
    Not ``wait4``'s ``ru_maxrss``: the forked child starts as a copy of this process, and exec keeps that copy's
    peak in ``ru_maxrss``, so inside a test process that has grown to 2 GB every child would "use" 2 GB.
    """
    t0 = time.perf_counter()
    proc = _popen(argv, stdin=subprocess.DEVNULL)
    out: dict[str, str] = {}
    readers = [threading.Thread(target=lambda k=k, s=s: out.__setitem__(k, s.read()), daemon=True)
               for k, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for r in readers:
        r.start()
    killed = None
    peak_mb = 0.0
    while killed is None:
        peak_mb = max(peak_mb, _status_mb(proc.pid, "VmHWM"))
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > timeout:
            killed = f"still running after {timeout:g} s"
        elif _status_mb(proc.pid, "VmRSS") > rss_limit_mb:
            killed = f"RSS over {rss_limit_mb:g} MB"
        else:
            time.sleep(0.02)
            continue
        peak_mb = max(peak_mb, _status_mb(proc.pid, "VmHWM"))
        os.kill(proc.pid, signal.SIGKILL)
        pid, status, _ = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    for r in readers:
        r.join(5)
    return Watched(None if killed else proc.returncode, out.get("stdout", ""), out.get("stderr", ""), wall,
                   peak_mb, killed)
