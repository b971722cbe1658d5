"""The text files of a pack: ``install.sh`` (offline install into a venv, then the selftest), a systemd unit
template, and the README the person at the device reads. Plain templates filled with ``str.format``.
"""

from __future__ import annotations

INSTALL_SH = """#!/bin/sh
# Installs edgecls {version} and its models from this folder, offline, into a venv; then checks the models here.
#   sh install.sh [PREFIX]          PREFIX: the venv (default /opt/edgecls); PYTHON=python3.11 to pick the interpreter
# Made by `edgecls pack` for {target} (Python {python}). Needs python3 with venv (Debian: apt install python3-venv).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${{1:-/opt/edgecls}}
PYTHON=${{PYTHON:-python3}}
machine=$(uname -m)
if [ "$machine" != "{machine}" ]; then
  echo "error: this bundle is for {machine} ({target}); this machine is $machine" >&2; exit 2
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != ({py_major}, {py_minor}))'; then
  echo "error: this bundle's wheels are for Python {python}; $PYTHON is $("$PYTHON" -V 2>&1) (set PYTHON=...)" >&2
  exit 2
fi
# The system's pip installs into a venv made without one when it can (pip >= 22.3: --python): on a slow board
# ensurepip is a large share of the install. --no-compile: the selftest below compiles what the runtime imports.
if "$PYTHON" -m venv --without-pip "$PREFIX" && "$PYTHON" -m pip --python "$PREFIX/bin/python" --version \
    >/dev/null 2>&1; then
  "$PYTHON" -m pip --python "$PREFIX/bin/python" install -q --no-compile --no-index --find-links \
    "$HERE/wheelhouse" "{requirement}"
else
  "$PYTHON" -m venv "$PREFIX"
  "$PREFIX/bin/python" -m pip install -q --no-compile --no-index --find-links "$HERE/wheelhouse" "{requirement}"
fi
mkdir -p "$PREFIX/models"
cp "$HERE"/models/* "$PREFIX/models/"
sed -e "s#@PREFIX@#$PREFIX#g" "$HERE/edgecls.service" > "$PREFIX/edgecls.service"
echo "installed edgecls {version} into $PREFIX (models in $PREFIX/models)"
if [ "${{SKIP_SELFTEST:-0}}" != "1" ]; then
  "$PREFIX/bin/edgecls" selftest "$PREFIX/models"
fi
echo "service: edit $PREFIX/edgecls.service, then: cp $PREFIX/edgecls.service /etc/systemd/system/ &&"
echo "         systemctl daemon-reload && systemctl enable --now edgecls"
"""

SERVICE_UNIT = """# systemd unit for edgecls on the device (install.sh fills @PREFIX@). Pick one ExecStart line.
[Unit]
Description=edgecls image classifier ({model})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
# Classify camera 0 and print one JSON line per frame (journalctl -u edgecls):
ExecStart=@PREFIX@/bin/edgecls run @PREFIX@/models/{model} --camera 0 --json
# Or serve the model over HTTP (needs the serve extra: edgecls pack ... --extra serve):
#ExecStart=@PREFIX@/bin/edgecls serve @PREFIX@/models/{model} --camera 0 --host 0.0.0.0 --port 8000
Restart=on-failure
RestartSec=5
# The camera device needs the video group; a dedicated user: useradd -r -G video edgecls, then User=edgecls
SupplementaryGroups=video

[Install]
WantedBy=multi-user.target
"""

README = """# edgecls {version} for {target} (Python {python})

Made by `edgecls pack` on {created}. Everything installs offline: no network on the device.

    sh install.sh [/opt/edgecls]      # venv + wheels from wheelhouse/ + models, then `edgecls selftest`

- `models/`: {models}. Each fp32 model has its golden file (`*.golden.npz`: inputs and the outputs PyTorch
  computed at export); fp16 and int8 variants are checked against it.
- `edgecls selftest /opt/edgecls/models` runs the golden inputs on this device and compares (fp32: max |d|
  <= 1e-3 of the logit scale; fp16, int8: top-1 agreement and a bound); exit 1 on a mismatch.
- `edgecls.service`: a systemd unit template (`edgecls run ... --camera 0 --json`, or `edgecls serve`).
- `wheelhouse/`: edgecls and its dependencies for {target}, Python {python} ({wheels} wheels).
- `manifest.json`: what is in here, with sha256 sums.
"""
