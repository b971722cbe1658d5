"""The devices ``edgecls pack`` makes bundles for: pip's platform tags, the machine name, the int8 ``--target``.

pip's ``--platform`` takes exact wheel tags (it expands manylinux2014 to the older ones, but not manylinux_2_28), so
every glibc from Debian bookworm's 2.36 (Raspberry Pi OS bookworm) down to manylinux2014's 2.17 is listed: a wheel
that needs a newer glibc than the device has is never picked.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgecls.runtime.errors import EdgeclsError


@dataclass(frozen=True)
class DeviceTarget:
    name: str  # --platform of pack: linux-aarch64 ...
    machine: str  # what `uname -m` prints on the device
    pip_platforms: tuple[str, ...]
    int8_target: str  # the int8 --target for this device (edgecls.runtime.cpu_isa.TARGETS)


_DEVICE_GLIBC_MINOR = 36  # Debian 12 bookworm


def _linux(arch: str, int8_target: str) -> DeviceTarget:
    glibc = tuple(f"manylinux_2_{minor}_{arch}" for minor in range(_DEVICE_GLIBC_MINOR, 16, -1))
    return DeviceTarget(f"linux-{arch}", arch, (*glibc, f"manylinux2014_{arch}"), int8_target)


#: x86-avx2 is the int8 recipe every x86-64 CPU with AVX2 runs without saturating (7-bit weights); a VNNI fleet
#: gets the full-range file with --target x86-vnni.
DEVICE_TARGETS: dict[str, DeviceTarget] = {
    t.name: t
    for t in (
        _linux("aarch64", "arm64"),  # Raspberry Pi 4/5, Jetson, Rockchip boards, Graviton
        _linux("x86_64", "x86-avx2"),
        _linux("armv7l", "arm64"),  # 32-bit Raspberry Pi OS: onnxruntime publishes no wheel (pack says so)
    )
}


DEFAULT_PLATFORM = "linux-aarch64"  # pack's --platform when none is given


def device_target(name: str) -> DeviceTarget:
    try:
        return DEVICE_TARGETS[name]
    except KeyError:
        raise EdgeclsError(f"--platform must be one of {', '.join(DEVICE_TARGETS)}, got {name!r}") from None


def python_tag(version: str) -> tuple[str, str]:
    """``3.11`` -> (pip's ``--python-version`` ``3.11``, the ABI tag ``cp311``)."""
    parts = version.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or parts[0] != "3":
        raise EdgeclsError(f"--python must look like 3.11, got {version!r}")
    return version, f"cp3{parts[1]}"
