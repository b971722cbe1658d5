"""What the service needs besides a release, made once and then kept: the settings file (mode 600, with a
generated token for serve, printed once), the unit, the system user, and ``install.json`` (which unit runs which
model). A re-install or update never rewrites the first three: they hold the user's edits and secret.

Under a booted systemd as root the unit goes to /etc/systemd/system and the user is created (``useradd
--system``, in the ``video`` group for cameras); elsewhere (a chroot, an image being prepared, a non-root install)
the unit is written into the prefix with the commands that put it in place.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from edgecls.runtime.atomic import atomic_write_text
from edgecls.runtime.device.manifest import ServiceEntry, ServiceKind
from edgecls.runtime.device.service import systemctl, systemd_booted
from edgecls.runtime.device.unit import SERVICE_USER, render_settings, render_unit
from edgecls.runtime.errors import EdgeclsError

SETTINGS_NAME = "edgecls.env"
STATE_NAME = "install.json"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")


class InstallState(msgspec.Struct, frozen=True):
    """PREFIX/install.json: the unit's name and the service it runs (chosen at the first install)."""

    unit: str
    service: ServiceEntry
    unit_path: str


def read_state(prefix: Path) -> InstallState | None:
    try:
        return msgspec.json.decode((prefix / STATE_NAME).read_bytes(), type=InstallState)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError) as e:
        raise EdgeclsError(f"{prefix / STATE_NAME}: unreadable ({e}); move it away to install afresh") from e


@dataclass
class SetupResult:
    unit_path: Path
    token: str | None = None  # generated now (printed once); None when the settings file already existed
    notes: list[str] = field(default_factory=list)


def _ensure_user() -> str:
    """The service's system user, created when missing; in the video group when the system has one."""
    try:
        pwd.getpwnam(SERVICE_USER)
        return f"user {SERVICE_USER} exists"
    except KeyError:
        pass
    groups = []
    try:
        grp.getgrnam("video")
        groups = ["--groups", "video"]
    except KeyError:
        pass
    cmd = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
           "/usr/sbin/nologin", *groups, SERVICE_USER]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise EdgeclsError(f"could not create the service user {SERVICE_USER}: {r.stderr.strip()[-200:]}")
    return f"created system user {SERVICE_USER}" + (" (group video)" if groups else "")


def setup_service(prefix: Path, unit: str, service: ServiceEntry) -> SetupResult:
    """Settings file, unit and user, each only when missing."""
    settings = prefix / SETTINGS_NAME
    managed = systemd_booted() and os.geteuid() == 0
    unit_path = (SYSTEM_UNIT_DIR if managed else prefix) / f"{unit}.service"
    result = SetupResult(unit_path)
    if not settings.exists():
        token = secrets.token_urlsafe(24) if service.kind is ServiceKind.serve else None
        atomic_write_text(settings, render_settings(service, token), mode=0o600)
        result.token = token
    if unit_path.exists():
        result.notes.append(f"kept {unit_path} (your edits stay; the new release runs through {prefix}/current)")
    else:
        atomic_write_text(unit_path, render_unit(prefix, service, settings))
    if managed:
        result.notes.append(_ensure_user())
        systemctl("daemon-reload")
        result.notes.append(f"service: systemctl enable --now {unit}  (start at boot and now)")
    else:
        result.notes.append(
            f"service: as root on the device: useradd --system --user-group -G video {SERVICE_USER}; "
            f"cp {unit_path} {SYSTEM_UNIT_DIR}/ && systemctl daemon-reload && systemctl enable --now {unit}"
        )
    state = InstallState(unit, service, str(unit_path))
    atomic_write_text(prefix / STATE_NAME, msgspec.json.encode(state).decode())
    return result
