"""The systemd unit and its settings file, written in Python from typed values (no shell or sed substitution:
a `#`, `&` or newline in the prefix once became sed syntax or a unit directive).

Quoting follows systemd.service(5) "Command lines" and systemd.syntax(7), as systemd 252 parses them (checked
with `systemd-analyze verify`): each ExecStart word is double-quoted with `%` doubled (specifiers); arguments
also get `\\` and `"` escaped and `$` doubled (environment expansion); the executable's path is not expanded
(a `$` stays as it is) and systemd refuses one holding `\\`, `"` or `'` ("Executable name contains special
characters"), so such a prefix is refused, as is any control character (a newline would end the line and start a
new directive). Other settings take the path as the rest of the line, so only `%` needs doubling.
`systemd-escape` is the tool for unit *names* (`-` and `/` mangling), not for command lines: the unit's name
here is fixed (edgecls.service).
"""

from __future__ import annotations

from pathlib import Path

from edgecls.runtime.device.manifest import ServiceEntry, ServiceKind, check_model_name
from edgecls.runtime.errors import EdgeclsError

#: The system user the service runs as (created by the install when it runs as root under systemd).
SERVICE_USER = "edgecls"
#: ``StartLimitBurst`` restarts within ``StartLimitIntervalSec``, then systemd stops trying (no endless loop).
START_LIMIT_BURST = 5
START_LIMIT_INTERVAL_S = 120
RESTART_SEC = 5


def _refuse_control(value: str, what: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise EdgeclsError(f"{what} {value!r}: control characters cannot be written into a systemd unit")
    return value


def quote_exec_arg(arg: str) -> str:
    """``arg`` as one ExecStart argument: ``/opt/my dir/%x`` -> ``"/opt/my dir/%%x"``."""
    _refuse_control(arg, "argument")
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def quote_exec_path(path: str) -> str:
    """The executable of an ExecStart line (no variable expansion there; quotes and backslashes refused)."""
    _refuse_control(path, "path")
    if any(c in path for c in "\\\"'"):
        raise EdgeclsError(f"{path!r}: systemd cannot start a program whose path holds a quote or a backslash: "
                           "install into another prefix")
    return f'"{path.replace("%", "%%")}"'


def quote_setting_path(path: str) -> str:
    """A path as the value of a setting such as ``EnvironmentFile=`` (specifiers expanded, no word splitting)."""
    return _refuse_control(path, "path").replace("%", "%%")


def exec_start(prefix: Path, service: ServiceEntry) -> str:
    """The ExecStart words: the release's edgecls on the release's model, through the ``current`` link (an update
    swaps the link; the unit never changes). Host, port and token come from the settings file."""
    check_model_name(service.model)
    words = [quote_exec_path(str(prefix / "current/venv/bin/edgecls")), service.kind.value,
             quote_exec_arg(str(prefix / "current/models" / service.model))]
    if service.kind is ServiceKind.run:
        words += ["--camera", str(service.camera if service.camera is not None else 0), "--json"]
    else:
        words += ["--host", "${EDGECLS_HOST}", "--port", "${EDGECLS_PORT}"]
        if service.camera is not None:
            words += ["--camera", str(service.camera)]
    return " ".join(words)


#: Exit statuses systemd does not restart: 2 is "cannot start with this configuration" (a bad model, flag or
#: port) for every command; for `run` 1 means its source failed (no camera, or it died), which a restart every
#: few seconds does not fix either: the journal says why, and `systemctl restart` retries once it is plugged in.
NO_RESTART_STATUS = {ServiceKind.run: "1 2", ServiceKind.serve: "2"}


def render_unit(prefix: Path, service: ServiceEntry, settings: Path) -> str:
    """The unit file: a dedicated user, its settings from ``settings`` (EnvironmentFile), restarts bounded."""
    camera = service.camera if service.camera is not None else 0
    if service.kind is ServiceKind.run:
        what = f"classifies camera {camera} and writes one JSON line per frame to the journal"
        why = (f"Without camera {camera} (or when it fails) edgecls run exits 1 with one line saying so, and systemd\n"
               "# does not restart it: no restart loop on a board without its camera. `--service serve` needs none.")
    else:
        what = "answers HTTP on EDGECLS_HOST:EDGECLS_PORT (token: EDGECLS_TOKEN)"
        why = "Exit 2 (cannot start: a bad model, flag or busy port) is not restarted: a restart would not fix it."
    # serve reloads its model on SIGHUP without dropping a request (old model kept when the new one fails its golden
    # check): `systemctl reload edgecls` after replacing the file in place. The shell's own kill: a minimal Debian
    # root has no /bin/kill (procps).
    reload = '\nExecReload=/bin/sh -c "kill -HUP $MAINPID"' if service.kind is ServiceKind.serve else ""
    return f"""# edgecls {service.kind.value} service: {what}.
# Written once by the edgecls install; re-installs and `edgecls update` keep your edits (they swap the `current`
# link under the prefix and restart). Settings (host, port, token) live in the EnvironmentFile below.
# {why}
# A crash is restarted, at most {START_LIMIT_BURST} times in {START_LIMIT_INTERVAL_S} s.
[Unit]
Description=edgecls image classifier ({service.kind.value} {service.model})
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec={START_LIMIT_INTERVAL_S}
StartLimitBurst={START_LIMIT_BURST}

[Service]
Type=simple
User={SERVICE_USER}
Group={SERVICE_USER}
# Cameras (/dev/video*, the Pi's /dev/media*) belong to the video group.
SupplementaryGroups=video
EnvironmentFile={quote_setting_path(str(settings))}
# What edgecls remembers between starts (an int8 file's notices are printed once per file, not at every restart)
# lives in /var/lib/edgecls, owned by the service user: the user has no home to write in.
StateDirectory=edgecls
Environment=XDG_STATE_HOME=%S
ExecStart={exec_start(prefix, service)}{reload}
Restart=on-failure
RestartSec={RESTART_SEC}
RestartPreventExitStatus={NO_RESTART_STATUS[service.kind]}
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=read-only
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""


def render_settings(service: ServiceEntry, token: str | None) -> str:
    """The EnvironmentFile (mode 600, read by systemd as root before it drops to the service user)."""
    lines = ["# edgecls service settings, read by systemd (EnvironmentFile=). Kept on re-install and update.",
             f"EDGECLS_PORT={service.port}"]
    if service.kind is ServiceKind.serve:
        lines += ["# 0.0.0.0: every interface (the token is required there); 127.0.0.1: this board only.",
                  "EDGECLS_HOST=0.0.0.0", "# The bearer token every /v1 route of edgecls serve requires.",
                  f"EDGECLS_TOKEN={token}"]
    return "\n".join(lines) + "\n"


def read_settings(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of the settings file (comments and blank lines skipped; quotes around a value removed)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[key.strip()] = value
    return out
