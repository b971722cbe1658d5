"""The running service as systemd sees it, and the probe that decides whether an update stays.

- serve: ``GET http://127.0.0.1:EDGECLS_PORT/healthz`` answers JSON with ``"model": {"file": NAME, "sha256": HEX}``
  and ``"golden": "pass"`` (serve ran the golden inputs through the model it loaded and they matched): the sha256
  must be the manifest's for the service's model.
- run: the unit is still active ``settle`` seconds after the restart, with the same main process (not restarted).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from edgecls.runtime.errors import EdgeclsError

#: systemd is the init here (what sd_booted(3) checks).
SYSTEMD_RUNTIME = Path("/run/systemd/system")


def systemd_booted() -> bool:
    return SYSTEMD_RUNTIME.is_dir() and shutil.which("systemctl") is not None


def systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise EdgeclsError(f"systemctl {' '.join(args)}: {(r.stderr.strip() or r.stdout.strip())[-300:]}")
    return r


@dataclass(frozen=True)
class UnitState:
    active: str  # ActiveState: active, activating, failed, inactive ...
    main_pid: int
    restarts: int  # NRestarts: automatic restarts since the last start by hand


def unit_state(unit: str) -> UnitState:
    r = systemctl("show", "-p", "ActiveState,MainPID,NRestarts", unit, check=False)
    props = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    return UnitState(props.get("ActiveState", "unknown"), int(props.get("MainPID") or 0),
                     int(props.get("NRestarts") or 0))


def unit_is_active(unit: str) -> bool:
    return systemd_booted() and systemctl("is-active", "--quiet", unit, check=False).returncode == 0


def restart(unit: str) -> None:
    """Restart ``unit``, clearing an exhausted start limit first (a rollback restarts right after failures)."""
    systemctl("reset-failed", unit, check=False)
    systemctl("restart", unit, check=False)  # Type=simple: returns once the process is started; the probe judges


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    seconds: float


def probe_serve(unit: str, port: int, model: str, sha256: str, timeout: float) -> ProbeResult:
    """Poll /healthz on loopback until it names ``model`` with ``sha256`` and a passing golden check; give up early
    when systemd has given up on ``unit`` (failed: its start limit reached, or an exit it does not restart)."""
    t0 = time.monotonic()
    detail = "no answer"
    while time.monotonic() - t0 < timeout:
        if unit_state(unit).active == "failed":
            return ProbeResult(False, f"{unit} failed (journalctl -u {unit}); last: {detail}", time.monotonic() - t0)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                body = json.loads(r.read(65536))
            got = body.get("model") or {}
            if got.get("sha256") == sha256 and body.get("golden") == "pass":
                return ProbeResult(True, f"/healthz: {model} sha256 {sha256[:12]}, golden pass",
                                   time.monotonic() - t0)
            detail = (f"/healthz answered model {str(got.get('file'))[:80]!r} sha256 {str(got.get('sha256'))[:12]}, "
                      f"golden {str(body.get('golden'))[:20]!r} (expected {model} {sha256[:12]}, pass)")
        except (OSError, ValueError, AttributeError) as e:  # refused, reset, timeout, not JSON
            detail = f"/healthz: {type(e).__name__}: {str(e)[:120]}"
        time.sleep(0.5)
    return ProbeResult(False, detail, time.monotonic() - t0)


def probe_run(unit: str, settle: float, timeout: float) -> ProbeResult:
    """The unit came up and stayed up ``settle`` seconds in one process (no automatic restart meanwhile)."""
    t0 = time.monotonic()
    pid, since = 0, t0
    restarts = unit_state(unit).restarts
    while time.monotonic() - t0 < timeout:
        state, now = unit_state(unit), time.monotonic()
        if state.restarts != restarts:
            return ProbeResult(False, f"{unit} restarted by systemd (journalctl -u {unit})", now - t0)
        if state.active == "active" and state.main_pid:
            if state.main_pid != pid:
                pid, since = state.main_pid, now
            elif now - since >= settle:
                return ProbeResult(True, f"{unit} active for {settle:.0f} s in one process (pid {pid})", now - t0)
        elif state.active in ("failed", "inactive") and now - t0 > 1:
            return ProbeResult(False, f"{unit} is {state.active} (journalctl -u {unit})", now - t0)
        time.sleep(0.5)
    return ProbeResult(False, f"{unit} did not stay active for {settle:.0f} s", time.monotonic() - t0)
