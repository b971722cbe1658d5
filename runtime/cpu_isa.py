"""The CPU's integer instruction set, and whether an int8 file's products saturate on it.

Why it matters (onnxruntime's MLAS kernels):
- x86 with VNNI (AVX512-VNNI, AVX-VNNI; AMD Zen 4 included): u8 x s8 products accumulate exactly in
  VPDPBUSD, so full-range uint8 activations x int8 weights are both fast and accurate.
- x86 AVX2 without VNNI: u8s8 uses VPMADDUBSW, whose int16 pair sums saturate when both operands use their
  full range. onnxruntime's session option ``session.x64quantprecision`` (its
  ``kOrtSessionOptionsAvx2PrecisionMode``, onnxruntime_session_options_config_keys.h) switches to slower
  exact u8u8 kernels; 7-bit weights (``reduce_range``) avoid the overflow in the fast kernels.
- ARM with the dot-product extension (``asimddp``): int8 x int8 is the native path.

On an arm64 process the ARM flags decide, never x86 ones: under qemu-user (an arm64 root on an x86 box)
``/proc/cpuinfo`` is the host's x86 text, so the flags then come from the kernel's ELF auxiliary vector
(``getauxval(AT_HWCAP)``), which qemu fills for the CPU it emulates and which onnxruntime's own CPU detection reads.

Torch- and onnx-free: the runtime's int8 notices and ``pack`` use it to say when a file was made for another CPU.
"""

from __future__ import annotations

import ctypes
import platform
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_X86_VNNI = ("avx512_vnni", "avx_vnni", "amx_int8")

#: The devices an int8 recipe can be made for (``--target``).
TARGETS = ("x86-vnni", "x86-avx2", "arm64")


@dataclass(frozen=True)
class IsaProfile:
    isa: str  # "x86-vnni" | "x86-avx2" | "x86" | "arm-dotprod" | "arm" | "unknown"
    flags: tuple[str, ...]  # the flags the decision was based on
    machine: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def target(self) -> str:
        """The ``--target`` this CPU is: x86 without VNNI counts as x86-avx2 (the saturating kernels)."""
        if self.isa == "x86-vnni":
            return "x86-vnni"
        if self.isa.startswith("arm"):
            return "arm64"
        return "x86-avx2"


def read_cpuinfo() -> str:
    """``/proc/cpuinfo`` (Linux), or "" where there is none: the one place edgecls reads it."""
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags: x86 ``flags`` / ARM ``Features`` lines of ``/proc/cpuinfo`` (empty elsewhere)."""
    if cpuinfo is None:
        cpuinfo = read_cpuinfo()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return frozenset(flags)


_ARM_MACHINES = ("aarch64", "arm64")
# Linux's arm64 HWCAP bits (arch/arm64/include/uapi/asm/hwcap.h): the names /proc/cpuinfo's Features line uses.
_AT_HWCAP = 16
_ARM64_HWCAP_BITS = {"fp": 0, "asimd": 1, "asimdhp": 10, "asimddp": 20, "sve": 22}


def arm64_hwcap_flags() -> frozenset[str]:
    """The arm64 feature names set in ``getauxval(AT_HWCAP)`` (empty off Linux or when libc cannot say)."""
    if not sys.platform.startswith("linux") or platform.machine().lower() not in _ARM_MACHINES:
        return frozenset()  # other architectures number their HWCAP bits differently
    try:
        getauxval = ctypes.CDLL(None).getauxval
    except (OSError, AttributeError):
        return frozenset()
    getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    hwcap = int(getauxval(_AT_HWCAP))
    return frozenset(name for name, bit in _ARM64_HWCAP_BITS.items() if hwcap >> bit & 1)


def detect_isa(cpuinfo: str | None = None, machine: str | None = None) -> IsaProfile:
    """Read ``/proc/cpuinfo`` flags (Linux); other systems fall back to the machine name. On an arm64 machine
    only ARM features count; without a Features line in ``/proc/cpuinfo`` (qemu-user shows the host's) this
    process's HWCAP gives them."""
    live = cpuinfo is None and machine is None  # this process: its auxiliary vector may be read
    machine = machine or platform.machine().lower()
    flags = cpu_flags(cpuinfo)
    if machine in _ARM_MACHINES:
        arm = {f for f in flags if f.startswith("asimd") or f in _ARM64_HWCAP_BITS}
        if not arm and live:
            arm = set(arm64_hwcap_flags())
        if "asimddp" in arm:
            return IsaProfile("arm-dotprod", ("asimddp",), machine)
        return IsaProfile("arm", tuple(f for f in ("asimd",) if f in arm), machine)
    vnni = tuple(f for f in _X86_VNNI if f in flags)
    if vnni:
        return IsaProfile("x86-vnni", vnni, machine)
    if "avx2" in flags:
        return IsaProfile("x86-avx2", ("avx2",), machine)
    if "asimddp" in flags:
        return IsaProfile("arm-dotprod", ("asimddp",), machine)
    if machine.startswith("arm") or "asimd" in flags:
        return IsaProfile("arm", tuple(f for f in ("asimd",) if f in flags), machine)
    if machine in ("x86_64", "amd64", "i686", "x86"):
        return IsaProfile("x86", (), machine)
    return IsaProfile("unknown", (), machine)


def saturates_here(quantization: Mapping[str, Any], isa: IsaProfile) -> bool:
    """True when the file's int8 products overflow this CPU's fast kernels: full-range u8 activations x s8
    weights on x86 without VNNI (``quantization`` is the contract's ``provenance.quantization``)."""
    full_range_u8s8 = (
        quantization.get("activation_type") == "QUInt8"
        and quantization.get("weight_type", "QInt8") == "QInt8"
        and not quantization.get("reduce_range", False)
    )
    return full_range_u8s8 and isa.target == "x86-avx2" and isa.isa != "unknown"


# What running an int8 file on a CPU it was not made for costs (the contract records ``quantization.target``).
# A VNNI file on AVX2 is the saturation notice (accuracy, runtime/terminal/int8_notices.py); these are the other
# mismatches.
_MISMATCH_COST = {
    ("x86-vnni", "arm64"): "its u8 activations miss ARM's s8s8 dot-product path (asimddp); re-quantize with "
    "--target arm64",
    ("x86-avx2", "arm64"): "its u8 activations miss ARM's s8s8 dot-product path (asimddp) and its 7-bit weights "
    "give up accuracy this CPU does not need to; re-quantize with --target arm64",
    ("arm64", "x86-vnni"): "its s8 activations miss the u8s8 kernels x86 int8 is built on (VPDPBUSD); re-quantize "
    "with --target x86-vnni",
    ("arm64", "x86-avx2"): "its s8 activations miss the u8s8 kernels x86 int8 is built on; re-quantize with "
    "--target x86-avx2",
    ("x86-avx2", "x86-vnni"): "its 7-bit weights give up accuracy a VNNI CPU does not need to (no saturation "
    "here); re-quantize with --target x86-vnni",
}


def made_for_other_cpu(provenance: Mapping[str, Any], isa: IsaProfile) -> tuple[str, str] | None:
    """(the ``--target`` the int8 file was made for, what that costs on ``isa``) when that is not ``isa``'s;
    None when it matches, when the file records no target, or when the CPU is unknown."""
    q = provenance.get("quantization")
    if not isinstance(q, Mapping) or q.get("target") not in TARGETS:
        return None
    made_for, here = str(q["target"]), isa.target
    if isa.isa == "unknown" or made_for == here or (made_for, here) not in _MISMATCH_COST:
        return None
    return made_for, _MISMATCH_COST[(made_for, here)]


def target_mismatch(provenance: Mapping[str, Any], isa: IsaProfile | None = None) -> str | None:
    """For ``pack``, where ``isa`` is the device the bundle is for: a warning when the int8 file was made for
    another CPU, with what it costs and the ``--target`` to quantize with. (Running a file here is another
    matter: a file made for a device and tried on this machine is not wrong, see runtime/terminal/int8_notices.py.)"""
    isa = isa or detect_isa()
    other = made_for_other_cpu(provenance, isa)
    if other is None:
        return None
    return (
        f"int8 made for {other[0]} runs on {isa.isa} ({isa.machine}): "
        f"slower or less accurate than a file made for this CPU: {other[1]}"
    )
