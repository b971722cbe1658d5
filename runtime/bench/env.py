"""The environment a benchmark ran in, recorded beside every result so numbers can be compared honestly.

CPU model and instruction-set flags are read at run time (``/proc/cpuinfo`` through :mod:`edgecls.runtime.cpu_isa`,
which also says whether int8 products saturate here): int8 speed depends on VNNI / ARM dot-product support, so it
is never assumed. Library versions come from ``importlib.metadata``;
torch in particular is never imported here (the edge runtime must not import it, and importing it is slow).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from edgecls.runtime.cpu_isa import cpu_flags, detect_isa, read_cpuinfo

# x86 and ARM feature flags that decide which int8/fp16 kernels a CPU can use.
ISA_FLAGS: tuple[str, ...] = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
    "amx_int8", "neon", "asimd", "asimddp", "asimdhp", "fphp", "i8mm", "sve", "sve2", "bf16",
)

# Distribution names that provide each module (the GPU/OpenVINO wheels replace ``onnxruntime``).
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml",
                    "onnxruntime-qnn", "ort-nightly"),
    "opencv": ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"),
    "numpy": ("numpy",),
    "torch": ("torch",),
    "openvino": ("openvino",),  # --provider openvino where onnxruntime's OpenVINO EP cannot run
    "edgecls": ("edgecls",),
}

# Environment variables that change how many threads the libraries use.
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")


@dataclass
class Environment:
    """Where and with what a benchmark ran. Serialised as the ``environment`` object of the JSON report."""

    cpu_model: str
    machine: str  # x86_64, aarch64, arm64 ...
    isa: list[str]  # the ISA_FLAGS this CPU reports, in ISA_FLAGS order
    logical_cores: int
    physical_cores: int
    usable_cores: int  # CPUs this process may run on (affinity / cgroup cpuset)
    os: str
    python: str
    versions: dict[str, str | None]  # onnxruntime, opencv, numpy, torch, edgecls (None = not installed)
    onnxruntime_providers: list[str]
    thread_env: dict[str, str]  # OMP_NUM_THREADS & co as set when the benchmark started
    opencv_threads: int | None
    cpu_governor: str | None
    load_average: list[float] | None  # 1/5/15 min load when the run started: a busy machine skews numbers
    timestamp: str  # UTC, ISO 8601
    #: cpu_isa's verdict on the int8 kernels: x86-vnni, x86-avx2 (products saturate), arm-dotprod, arm, ...
    int8_isa: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_model(cpuinfo: str) -> str:
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return platform.processor() or platform.machine() or "unknown"


def _isa(cpuinfo: str) -> list[str]:
    present = set(cpu_flags(cpuinfo))
    if not present and platform.machine().lower() in ("arm64", "aarch64"):
        present = {"neon", "asimd"}  # every 64-bit ARM core has Advanced SIMD
    return [f for f in ISA_FLAGS if f in present]


def _physical_cores(cpuinfo: str, logical: int) -> int:
    pairs = set()
    physical_id = core_id = None
    for line in cpuinfo.splitlines():
        if line.startswith("physical id"):
            physical_id = line.split(":", 1)[1].strip()
        elif line.startswith("core id"):
            core_id = line.split(":", 1)[1].strip()
        elif not line.strip():
            if core_id is not None:
                pairs.add((physical_id, core_id))
            physical_id = core_id = None
    if core_id is not None:
        pairs.add((physical_id, core_id))
    return len(pairs) or logical


def _usable_cores(logical: int) -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return logical


def distribution_version(module: str) -> str | None:
    """Installed version of the distribution providing ``module`` (never imports the module itself)."""
    for dist in _DISTRIBUTIONS.get(module, (module,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _providers() -> list[str]:
    try:
        import onnxruntime as ort

        return list(ort.get_available_providers())
    except ImportError:
        return []


def _opencv_threads() -> int | None:
    try:
        import cv2

        return int(cv2.getNumThreads())
    except ImportError:
        return None


def _governor() -> str | None:
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip() or None
    except OSError:
        return None


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def collect_environment() -> Environment:
    """Describe this machine and its libraries (cheap: no model is loaded, torch is not imported)."""
    info = read_cpuinfo()
    logical = os.cpu_count() or 1
    return Environment(
        cpu_model=_cpu_model(info),
        machine=platform.machine(),
        isa=_isa(info),
        int8_isa=detect_isa(info).isa,
        logical_cores=logical,
        physical_cores=_physical_cores(info, logical),
        usable_cores=_usable_cores(logical),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        versions={name: distribution_version(name) for name in _DISTRIBUTIONS},
        onnxruntime_providers=_providers(),
        thread_env={k: os.environ[k] for k in _THREAD_VARS if k in os.environ},
        opencv_threads=_opencv_threads(),
        cpu_governor=_governor(),
        load_average=_load_average(),
        timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def cpu_slug(env: Environment) -> str:
    """``intel-xeon`` / ``amd-epyc``: the CPU model for result file names (trademarks, "CPU", "Processor" and the
    clock dropped; the machine type when the model is unknown)."""
    cpu = re.sub(r"\((?:r|tm)\)|cpu|processor|@.*$", "", env.cpu_model, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-")[:40] or env.machine.lower()


#: Name parts for the instructions that decide int8 and bf16 speed, and the ISA_FLAGS that show each.
_SPEED_ISA = (
    ("vnni", {"avx512_vnni", "avx_vnni"}),
    ("amx", {"amx_int8"}),
    ("dotprod", {"asimddp"}),
    ("i8mm", {"i8mm"}),
    ("bf16", {"avx512_bf16", "bf16"}),
)


def isa_slug(env: Environment) -> str:
    """``avx512-vnni-amx-bf16`` / ``avx2`` / ``neon-dotprod``: the vector unit and the int8/bf16 instructions."""
    isa = set(env.isa)
    if "avx512f" in isa:
        width = "avx512"
    elif "avx2" in isa:
        width = "avx2"
    else:
        width = "neon" if isa & {"neon", "asimd"} else env.machine.lower()
    return "-".join([width, *(part for part, flags in _SPEED_ISA if isa & flags)])


def environment_slug(env: Environment) -> str:
    """``<cpu>_ort<version>_<date>`` for result file names, e.g. ``amd-epyc_ort1.32.0_2026-11-24``."""
    return f"{cpu_slug(env)}_ort{env.versions.get('onnxruntime') or 'none'}_{env.timestamp[:10]}"
