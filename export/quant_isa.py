"""The CPU's integer instruction set, detected at run time, and the int8 recipe that suits it.

Why it matters (onnxruntime MLAS kernels):
- x86 with VNNI (AVX512-VNNI, AVX-VNNI; AMD Zen 4 included): u8 x s8 products accumulate exactly in
  VPDPBUSD, so full-range uint8 activations x int8 weights are both fast and accurate.
- x86 AVX2 without VNNI: u8s8 uses VPMADDUBSW, whose int16 pair sums saturate; options are 7-bit weights
  (``reduce_range``), onnxruntime's slower precise kernels (session option
  ``session.x64quantprecision``, which every consumer would have to set) or keeping the sensitive nodes in
  float. The search measures the first and the last; the report says which won.
- ARM with the dot-product extension (``asimddp``): int8 x int8 (s8s8) is the native, fast path.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class IsaProfile:
    isa: str  # "x86-vnni" | "x86-avx2" | "x86" | "arm-dotprod" | "arm" | "unknown"
    flags: tuple[str, ...]  # the flags the decision was based on
    machine: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QuantRecipe:
    """One way of running ``quantize_static``; the budget search may try several."""

    name: str
    activation_type: str = "QUInt8"  # onnxruntime.quantization.QuantType member names
    weight_type: str = "QInt8"
    reduce_range: bool = False
    per_channel: bool = True
    calibrate_method: str = "MinMax"  # onnxruntime.quantization.CalibrationMethod member names
    reason: str = ""
    nodes_to_exclude: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        act = "u8" if self.activation_type == "QUInt8" else "s8"
        wt = "s8" if self.weight_type == "QInt8" else "u8"
        parts = [
            f"static QDQ {act}{wt}",
            "per-channel" if self.per_channel else "per-tensor",
            self.calibrate_method,
        ]
        if self.reduce_range:
            parts.append("reduce_range")
        if self.nodes_to_exclude:
            parts.append(f"{len(self.nodes_to_exclude)} nodes kept float")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["nodes_to_exclude"] = list(self.nodes_to_exclude)
        d["description"] = self.describe()
        return d


_X86_VNNI = ("avx512_vnni", "avx_vnni", "amx_int8")


def detect_isa(cpuinfo: str | None = None, machine: str | None = None) -> IsaProfile:
    """Read ``/proc/cpuinfo`` flags (Linux); other systems fall back to the machine name."""
    machine = machine or platform.machine().lower()
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    vnni = tuple(f for f in _X86_VNNI if f in flags)
    if vnni:
        return IsaProfile("x86-vnni", vnni, machine)
    if "avx2" in flags:
        return IsaProfile("x86-avx2", ("avx2",), machine)
    if "asimddp" in flags:
        return IsaProfile("arm-dotprod", ("asimddp",), machine)
    if machine in ("aarch64", "arm64") or machine.startswith("arm") or "asimd" in flags:
        return IsaProfile("arm", tuple(f for f in ("asimd",) if f in flags), machine)
    if machine in ("x86_64", "amd64", "i686", "x86"):
        return IsaProfile("x86", (), machine)
    return IsaProfile("unknown", (), machine)


def candidate_recipes(isa: IsaProfile) -> list[QuantRecipe]:
    """Recipes to measure, best guess first. Percentile calibration is appended by the search when needed."""
    if isa.isa == "x86-vnni":
        return [
            QuantRecipe("u8s8", reason=f"{'/'.join(isa.flags)}: u8s8 products do not saturate; full range")
        ]
    if isa.isa in ("x86-avx2", "x86", "unknown"):
        why = "AVX2 without VNNI saturates u8s8 products (VPMADDUBSW)"
        return [
            QuantRecipe("u8s8-reduce-range", reduce_range=True, reason=f"{why}: 7-bit weights avoid it"),
            QuantRecipe("u8s8", reason=f"{why}: full range, sensitive nodes kept float if needed"),
        ]
    # ARM: signed int8 activations and weights are the native dot-product path.
    why = "ARM dot-product (asimddp): s8s8 is native" if isa.isa == "arm-dotprod" else "ARM: s8s8"
    return [QuantRecipe("s8s8", activation_type="QInt8", reason=why)]
