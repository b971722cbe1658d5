#!/usr/bin/env bash
# Prepares the x86-64 Debian bookworm root the unit tests (tests/test_pack_service.py) boot with systemd as its
# PID 1 (systemd-nspawn --boot), cached outside the checkout like the arm64 root:
#   $EDGECLS_DEVICE_CACHE/x86_64-bookworm-systemd-root.tar.gz   the debootstrapped root (a few minutes, native)
#   $EDGECLS_DEVICE_CACHE/x86_64-bookworm-systemd-root/         the same root unpacked (tests boot it under an overlay)
# A headless board image with an init: minbase + systemd (as init), dbus, python3/venv/pip, CA certificates, curl
# for the probe. gpgv comes with minbase (apt depends on it), as on a board. systemd-nspawn (systemd-container)
# is installed on the host. Needs root. When something is missing it says why and exits 0: the tests then skip.
set -uo pipefail

CACHE="${EDGECLS_DEVICE_CACHE:-/var/cache/edgecls}"
SUITE=bookworm
NAME="x86_64-$SUITE-systemd-root"
INCLUDE="systemd,systemd-sysv,dbus,python3,python3-venv,python3-pip,ca-certificates,curl,iproute2"

WHAT="systemd root"

. "$(dirname "$0")/debian_root.sh"
prepare_host .systemd-root.lock "debootstrap systemd-container" debootstrap systemd-nspawn
# A booted container needs no network configuration; its machine-id is made at first boot.
customize_root() {
  echo edgecls-board > "$1/etc/hostname"
  : > "$1/etc/machine-id"
}
build_root "$NAME" --variant=minbase --include="$INCLUDE"
unpack_root "$NAME" lib/systemd/systemd
