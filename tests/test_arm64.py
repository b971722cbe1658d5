"""arm64 for real: a pack for linux-aarch64 installed offline (no network namespace) into a Debian bookworm arm64
root run under qemu-user (a Raspberry Pi 5 core: QEMU_CPU=cortex-a76, NEON with the dot product), its selftest,
and the answers of `edgecls run --json` on the digits test split against x86.

The root is built once per machine by tests/device/prepare_arm64_root.sh (`make test` runs it; ~20 min under
load) and cached outside the checkout; the wheels come from tests/device/prepare_wheels.sh's cache. Without
root, binfmt_misc, the root or the wheel cache these tests skip with the reason. Emulated timings mean nothing;
answers do.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_deploy import wheel_cache

CACHE = Path(os.environ.get("EDGECLS_DEVICE_CACHE", "/var/cache/edgecls"))
ROOT = CACHE / "arm64-bookworm-root"
DEVICE_PATH = "/usr/local/bin:/usr/bin:/bin"


def root_or_skip() -> Path:
    if platform.machine() != "x86_64":
        pytest.skip(f"the arm64 root is emulated on an x86_64 host; this is {platform.machine()}")
    if os.geteuid() != 0:
        pytest.skip("the arm64 root needs root (chroot, mounts)")
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        pytest.skip("qemu-aarch64 is not registered with binfmt_misc (tests/device/prepare_arm64_root.sh does it)")
    if not (ROOT / "usr/bin/python3").exists():
        pytest.skip(f"no arm64 root at {ROOT}: run tests/device/prepare_arm64_root.sh once (make test does; ~20 min)")
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is missing")
    # onnxruntime's cpuinfo reads these; the host's real /sys makes it crash under qemu, none makes it warn.
    cpu = ROOT / "sys/devices/system/cpu"
    cpu.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present"):
        (cpu / name).write_text("0-1\n")
    return ROOT


def in_root(script: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``sh -c SCRIPT`` as arm64 inside the root: a private mount namespace (its /proc and /dev vanish with it),
    no network namespace access (offline: only loopback), a clean environment."""
    inner = (
        'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && ip link set lo up 2>/dev/null; '
        f'exec chroot "$0" /usr/bin/env -i PATH={DEVICE_PATH} HOME=/root LANG=C.UTF-8 QEMU_CPU=cortex-a76 '
        'sh -c "$1"'
    )
    return subprocess.run(["unshare", "--mount", "--net", "--fork", "sh", "-c", inner, str(ROOT), script],
                          capture_output=True, text=True, timeout=timeout)


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real model: the classic CNN on scikit-learn's digits, 32 px, 5 epochs (99.6% validation)."""
    from edgecls.training.config import TrainConfig
    from edgecls.training.train import train

    out = tmp_path_factory.mktemp("arm64") / "digits"
    cfg = TrainConfig(data="builtin:digits", arch="cnn", epochs=5, input_size=32, batch_size=32, out=str(out),
                      warmup_epochs=0.3)
    return train(cfg, show_progress=False)


@pytest.fixture(scope="module")
def aarch64_bundle(digits_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`edgecls pack RUN --quantize --fp16 --platform linux-aarch64` (library call): int8 is made for the device
    (--target auto: arm64), not for this x86 box, with the default calibration and 1-point budget (only the
    latency loops are shortened)."""
    from edgecls.deploy.pack import PackOptions, pack
    from edgecls.export.export_run import ExportOptions
    from edgecls.export.quant.options import QuantizeOptions

    cache = wheel_cache("linux-aarch64")
    out = tmp_path_factory.mktemp("pack") / "digits-pi"
    quant = QuantizeOptions(latency_runs=5, latency_warmup=2, trial_latency_runs=5)
    pack(PackOptions(models=(str(digits_run),), out=str(out), platform="linux-aarch64", quantize=quant, fp16=True,
                     export=ExportOptions(parity_images=16), find_links=(str(cache),), no_index=True),
         log=lambda _m: None)
    return out


@pytest.fixture(scope="module")
def test_images(digits_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits test split (the run's seeded split) as PNG files: the demo's test images."""
    import cv2

    from edgecls.data.load import load_data

    test = load_data("builtin:digits").test
    folder = tmp_path_factory.mktemp("digits-test")
    labels = test.labels()
    for i in range(len(test)):
        cv2.imwrite(str(folder / f"{i:04d}_{labels[i]}.png"), test.load(i))
    return folder


@pytest.fixture(scope="module")
def installed(aarch64_bundle: Path, test_images: Path) -> Iterator[dict]:
    """The bundle and the test images copied into the root, install.sh run there offline; removed afterwards."""
    root = root_or_skip()
    work = root / "tmp" / f"edgecls-test-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    try:
        shutil.copytree(aarch64_bundle, work / "bundle")
        shutil.copytree(test_images, work / "images")
        dev = "/" + str(work.relative_to(root))
        t0 = time.perf_counter()
        # install.sh's own closing selftest is tested on x86 (test_pack.py); here the test runs it with --json
        r = in_root(f"SKIP_SELFTEST=1 sh {dev}/bundle/install.sh {dev}/prefix")
        yield {"work": work, "dev": dev, "install": r, "install_seconds": time.perf_counter() - t0}
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow  # trains, exports and packs for aarch64: 61 s at load 5-13
def test_pack_makes_the_int8_model_for_the_device_not_for_this_box(aarch64_bundle: Path):
    from edgecls.runtime.inference.classifier import Classifier

    names = sorted(p.name for p in (aarch64_bundle / "models").glob("*.onnx"))
    assert names == ["model.fp16.onnx", "model.int8.onnx", "model.onnx"]
    with pytest.warns(RuntimeWarning, match="int8 made for arm64; on this"):  # this box is not the device
        q = Classifier(aarch64_bundle / "models" / "model.int8.onnx").contract.provenance["quantization"]
    assert q["target"] == "arm64" and q["activation_type"] == "QInt8"  # s8s8: ARM's dot-product path
    wheels = {p.name for p in (aarch64_bundle / "wheelhouse").glob("*.whl")}
    assert any(n.startswith("onnxruntime-") and "aarch64" in n for n in wheels)
    assert not any("x86_64" in n for n in wheels)


@pytest.mark.slow
def test_offline_install_in_the_arm64_root_and_selftest_passes(installed: dict):
    r = installed["install"]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    print(f"\noffline install in the arm64 root: {installed['install_seconds']:.0f} s (emulated)")
    assert "installed edgecls 0.1.0" in r.stdout and "every file matches SHA256SUMS" in r.stdout
    dev = installed["dev"]
    st = in_root(f"{dev}/prefix/current/venv/bin/edgecls selftest {dev}/prefix/current --json")
    assert st.returncode == 0, st.stdout + st.stderr
    rows = {row["variant"]: row for row in jsonl(st.stdout)}
    assert set(rows) == {"fp32", "fp16", "int8"} and all(row["passed"] for row in rows.values())
    for row in rows.values():
        assert row["isa"].startswith("arm-dotprod (aarch64") and "CPUExecutionProvider" in row["provider"]
        # The int8 file was made for arm64: no target-mismatch or saturation warning here. (Its verdict may be
        # "unverified": the digits' held-out images sit near 100% for fp32, which that mark says.)
        assert [w for w in row["warnings"] if "int8 UNVERIFIED" not in w] == []
    print({v: (f"{r['max_abs_diff']:.2g}", r["agreement"]) for v, r in rows.items()})
    # The base install on a board image without X libraries: headless OpenCV imports, no GUI build, no torch.
    probe = in_root(
        f"ls /usr/lib/aarch64-linux-gnu | grep -c -E '^libxcb|^libX11' ; {dev}/prefix/current/venv/bin/python -c "
        "\"import cv2, importlib.util as u; print(cv2.__version__, [m for m in ('torch', 'onnx') if u.find_spec(m)])\""
    )
    lines = probe.stdout.split()
    assert lines[0] == "0" and "[]" in probe.stdout, probe.stdout + probe.stderr


@pytest.mark.slow
def test_arm64_answers_match_x86_and_arm64_int8_agrees_with_fp32(installed: dict, test_images: Path):
    assert installed["install"].returncode == 0
    dev = installed["dev"]
    runs = {}
    for name in ("model.onnx", "model.int8.onnx"):
        current = f"{dev}/prefix/current"
        r = in_root(f"{current}/venv/bin/edgecls run {current}/models/{name} {dev}/images --json --top-k 1")
        assert r.returncode == 0, r.stderr[-3000:]
        runs[name] = {Path(row["source"]).name: row["top_k"][0]["label"] for row in jsonl(r.stdout)}
    x86 = subprocess.run(
        [sys.executable, "-m", "edgecls", "run", str(installed["work"] / "prefix/current/models/model.onnx"),
         str(test_images), "--json", "--top-k", "1"], capture_output=True, text=True, timeout=600,
    )
    assert x86.returncode == 0, x86.stderr
    x86_fp32 = {Path(row["source"]).name: row["top_k"][0]["label"] for row in jsonl(x86.stdout)}
    n = len(x86_fp32)
    assert n == len(list(test_images.glob("*.png"))) and n > 200
    assert runs["model.onnx"] == x86_fp32  # fp32: the same top-1 on arm64 as on x86, every image
    agree = sum(runs["model.int8.onnx"][k] == runs["model.onnx"][k] for k in x86_fp32) / n
    truth = {k: k.split("_")[1].split(".")[0] for k in x86_fp32}
    acc = {m: sum(runs[m][k] == truth[k] for k in truth) / n for m in runs}
    print(f"\narm64 int8 vs fp32 agreement {agree:.2%} on {n} digits test images; top-1 fp32 {acc['model.onnx']:.2%}"
          f", int8 {acc['model.int8.onnx']:.2%} (ARM kernels, qemu cortex-a76)")
    assert agree >= 0.99
    # The same arm64 file on this x86 box: run says what it costs.
    int8 = installed["work"] / "prefix/current/models/model.int8.onnx"
    warn = subprocess.run([sys.executable, "-m", "edgecls", "run", str(int8), str(next(test_images.glob("*.png"))),
                           "--json"], capture_output=True, text=True, timeout=300)
    assert warn.returncode == 0 and "int8 made for arm64" in warn.stderr
