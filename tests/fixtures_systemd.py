"""A Debian bookworm x86-64 root booted with systemd as its PID 1 (``systemd-nspawn --boot``), for testing the
unit for real: install a bundle there, ``systemctl enable --now``, probe, reboot, update.

The root is built once per machine by tests/device/prepare_systemd_root.sh (`make device-root`) and cached; each
test session boots it under an overlay (the cache stays as built; the overlay's upper layer persists across the
container's reboots within the session). The container has its own network namespace with loopback only
(``--private-network``: offline), so probes run inside it. Commands run in it through ``nsenter`` into its PID 1's
namespaces (``machinectl`` needs machined on the host, which has no systemd as PID 1 here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_deploy import CACHE

SYSTEMD_ROOT = CACHE / "x86_64-bookworm-systemd-root"
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def systemd_root_or_skip() -> Path:
    if os.geteuid() != 0:
        pytest.skip("booting systemd in a container needs root")
    if shutil.which("systemd-nspawn") is None:
        pytest.skip("systemd-nspawn is missing (tests/device/prepare_systemd_root.sh installs systemd-container)")
    if not (SYSTEMD_ROOT / "lib/systemd/systemd").exists():
        pytest.skip(f"no systemd root at {SYSTEMD_ROOT}: run tests/device/prepare_systemd_root.sh (make device-root)")
    return SYSTEMD_ROOT


class BootedRoot:
    """The container: ``boot()``, ``sh(script)`` inside it, ``poweroff()``. ``exchange``: a host folder seen at
    the same path inside (read-only; what is copied there later appears inside too)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.merged = work / "merged"
        self.exchange = work / "exchange"
        self.exchange.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = work / "console.log"

    def mount(self) -> None:
        for d in ("upper", "overlay-work", "merged"):
            (self.work / d).mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={SYSTEMD_ROOT},upperdir={self.work / 'upper'},workdir={self.work / 'overlay-work'}",
                        str(self.merged)], check=True, capture_output=True)

    def boot(self, timeout: float = 90) -> float:
        """Start the container and wait until systemd reports the boot finished; returns the seconds it took."""
        t0 = time.monotonic()
        cmd = ["systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit", "--private-network",
               "-M", f"edgecls-test-{os.getpid()}", "-D", str(self.merged)]
        cmd.append(f"--bind-ro={self.exchange}")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if self._init_pid():
                state = self.sh("systemctl is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return time.monotonic() - t0
            time.sleep(0.5)
        raise RuntimeError(f"the container did not finish booting in {timeout} s: {self.log.read_text()[-2000:]}")

    def _init_pid(self) -> int | None:
        """The container's PID 1 as the host sees it: the child of systemd-nspawn."""
        if self.proc is None:
            return None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            return None
        return int(pids[0]) if pids else None

    def sh(self, script: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``sh -c SCRIPT`` inside the container as root, in a clean environment."""
        pid = self._init_pid()
        if pid is None:
            raise RuntimeError("the container is not running")
        cmd = ["nsenter", "--target", str(pid), "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd=/",
               "/usr/bin/env", "-i", "-C", "/", f"PATH={ROOT_PATH}", "HOME=/root", "LANG=C.UTF-8", "sh", "-c", script]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"in the container: {script}\nexit {r.returncode}\n{r.stdout[-3000:]}\n"
                                 f"{r.stderr[-3000:]}")
        return r

    def poweroff(self, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.sh("systemctl poweroff --no-block", check=False)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def unmount(self) -> None:
        subprocess.run(["umount", str(self.merged)], capture_output=True, check=False)


@pytest.fixture(scope="module")
def booted_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BootedRoot]:
    """The systemd root booted (an overlay over the cache), with an exchange folder for bundles."""
    systemd_root_or_skip()
    root = BootedRoot(tmp_path_factory.mktemp("systemd-root"))
    root.mount()
    try:
        root.boot()
        yield root
    finally:
        root.poweroff()
        root.unmount()
