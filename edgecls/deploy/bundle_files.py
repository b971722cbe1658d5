"""The text files of a pack: ``install.sh`` (check the bundle, make the venv, then ``edgecls update``) and the
README the person at the device reads. Plain templates filled with ``str.format`` from values pack controls
(version, target, Python); nothing from the device or the model files goes into them.
"""

from __future__ import annotations

INSTALL_SH = r"""#!/bin/sh
# Installs edgecls {version} and its models from this folder offline, or updates an install to it.
#   sh install.sh [PREFIX]    PREFIX: where edgecls lives (default /opt/edgecls); PYTHON=python3.11 picks the
#                             interpreter; EDGECLS_KEYRING: gpgv keyring (default /etc/edgecls/keyring.gpg);
#                             UNIT=name: the systemd unit's name at the first install (default edgecls)
# Made by `edgecls pack` for {target} (Python {python}). Needs python3 with venv (Debian: apt install python3-venv).
#
# 1. Before anything of this folder runs, every file is checked against SHA256SUMS (coreutils sha256sum), no file
#    may be there that SHA256SUMS does not list, and with a keyring on this machine SHA256SUMS must carry a good
#    signature (gpgv). A tampered install.sh could skip its own checks: run them yourself first (README.md).
# 2. The venv of this bundle's wheels (PREFIX/venvs/<sha256 of requirements.txt>), pip --require-hashes, offline.
# 3. `edgecls update` of the new venv: a release beside the old one, selftest, switch, restart, probe, roll back.
set -eu
fail() {{ echo "error: $*" >&2; exit 2; }}
PREFIX=${{1:-/opt/edgecls}}
case "$PREFIX" in /*) ;; *) PREFIX="$(pwd)/$PREFIX" ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"

# --- 1. this folder is exactly what was packed -------------------------------------------------------------------
KEYRING=${{EDGECLS_KEYRING:-/etc/edgecls/keyring.gpg}}
[ -f SHA256SUMS ] || fail "no SHA256SUMS in $HERE: not a bundle made by edgecls pack"
if [ -f "$KEYRING" ]; then
  [ -f SHA256SUMS.sig ] || fail "not signed (no SHA256SUMS.sig) and $KEYRING asks for signed bundles: refused"
  gpgv --keyring "$KEYRING" SHA256SUMS.sig SHA256SUMS >/dev/null 2>&1 \
    || fail "SHA256SUMS.sig is not a good signature by a key in $KEYRING: refused"
  echo "bundle: signature good ($KEYRING)"
elif [ -f SHA256SUMS.sig ]; then
  echo "note: SHA256SUMS.sig not checked: no keyring at $KEYRING" >&2
fi
[ -z "$(find . -type l)" ] || fail "symbolic links in the bundle: refused"
listed=$(sed 's/^[0-9a-f]\{{64\}}  //' SHA256SUMS | LC_ALL=C sort)
present=$(find . ! -type d ! -path ./SHA256SUMS ! -path ./SHA256SUMS.sig | sed 's#^\./##' | LC_ALL=C sort)
if [ "$listed" != "$present" ]; then
  extra=$(printf '%s\n' "$present" | grep -vxF "$listed" | head -n 3 | tr -c '[:alnum:]._/\n-' '?' | tr '\n' ' ')
  fail "files not listed in SHA256SUMS (or listed and missing): ${{extra:-see SHA256SUMS}}: refused"
fi
sha256sum --check --strict --quiet SHA256SUMS >&2 || fail "files differ from SHA256SUMS (above): refused"
echo "bundle: every file matches SHA256SUMS ($(sha256sum SHA256SUMS | cut -c1-16))"

# --- 2. this machine, this prefix, then the venv -----------------------------------------------------------------
machine=$(uname -m)
[ "$machine" = "{machine}" ] || fail "this bundle is for {machine} ({target}); this machine is $machine"
PYTHON=${{PYTHON:-python3}}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != ({py_major}, {py_minor}))' 2>/dev/null \
  || fail "this bundle's wheels are for Python {python}; $PYTHON is $("$PYTHON" -V 2>&1) (set PYTHON=...)"
if [ "$(printf '%s' "$PREFIX" | wc -l)" -ne 0 ] || printf '%s' "$PREFIX" | LC_ALL=C grep -q '[[:cntrl:]]'; then
  fail "PREFIX has a control character (a newline?): refused"
fi
case "$PREFIX" in
  *\"*|*\'*|*\\*) fail "PREFIX has a quote or a backslash: systemd cannot start a program there: refused" ;;
esac
VENV="$PREFIX/venvs/$(sha256sum requirements.txt | cut -c1-16)"
pip_install() {{
  "$@" install -q --no-compile --no-index --only-binary :all: --require-hashes --ignore-installed \
    --find-links "$HERE/wheelhouse" -r "$HERE/requirements.txt"
}}
if [ ! -f "$VENV/.complete" ]; then
  rm -rf "$VENV"
  trap 'rm -rf "$VENV"' EXIT  # nothing half-made stays behind (a failed install leaves no venv)
  mkdir -p "$PREFIX/venvs"
  # The system's pip installs into a venv made without one when it can (pip >= 22.3: --python): on a slow board
  # ensurepip is a large share of the install. --no-compile: the selftest compiles what the runtime imports.
  if "$PYTHON" -m venv --without-pip {venv_flags} "$VENV" \
      && "$PYTHON" -m pip --python "$VENV/bin/python" --version >/dev/null 2>&1; then
    pip_install "$PYTHON" -m pip --python "$VENV/bin/python"
  else
    rm -rf "$VENV"
    "$PYTHON" -m venv {venv_flags} "$VENV"
    pip_install "$VENV/bin/python" -m pip
  fi
  touch "$VENV/.complete"
fi
echo "installed edgecls {version} into $VENV"

# --- 3. a release beside the old one: selftest, switch, the service ----------------------------------------------
SELFTEST_FLAG=
[ "${{SKIP_SELFTEST:-0}}" = "1" ] && SELFTEST_FLAG=--skip-selftest
"$VENV/bin/edgecls" update "$HERE" --prefix "$PREFIX" --unit "${{UNIT:-edgecls}}" $SELFTEST_FLAG
trap - EXIT
"""

README = """# edgecls {version} for {target} (Python {python})

Made by `edgecls pack` on {created}. Everything installs offline: no network on the device.

    sh install.sh [/opt/edgecls]      # check every file, venv + wheels, release + selftest, the service's unit

Check the bundle yourself before running anything of it (install.sh checks too, but a tampered install.sh could
skip its own checks). With a signed bundle and the signer's public key in /etc/edgecls/keyring.gpg:

    gpgv --keyring /etc/edgecls/keyring.gpg SHA256SUMS.sig SHA256SUMS && sha256sum -c --strict SHA256SUMS

Without a signature, compare `sha256sum SHA256SUMS` with the fingerprint `edgecls pack` printed, then
`sha256sum -c --strict SHA256SUMS`.

- `models/`: {models}. Each fp32 model has its golden file (`*.golden.npz`: inputs and the outputs PyTorch
  computed at export); fp16 and int8 variants are checked against it.
- `manifest.json`: each model's variant, sha256 and golden file (selftest's tolerances come from here), the
  service the unit runs. `SHA256SUMS`: every file's sha256. `requirements.txt`: every wheel pinned and hashed.
- `wheelhouse/`: edgecls and its dependencies for {target}, Python {python} ({wheels} wheels).
- Installed: PREFIX/releases/<id>/ (models, manifest), PREFIX/current -> the running release, PREFIX/venvs/,
  PREFIX/edgecls.env (the service's port and token, mode 600), the unit edgecls.service.
"""

UPDATE_README = """# edgecls model update

Made by `edgecls pack --update` on {created}: models only ({models}), for a device that runs edgecls already.

    edgecls update .          # or: /opt/edgecls/current/venv/bin/edgecls update /path/to/this/folder

The new release is checked (SHA256SUMS, signature when /etc/edgecls/keyring.gpg exists), self-tested, switched to,
and the service restarted and probed; when the probe fails the old release is put back by itself.
"""
