#!/usr/bin/env bash
# Prepares the x86-64 Debian bookworm root the unit tests (tests/test_pack_service.py) boot with systemd as its
# PID 1 (systemd-nspawn --boot), cached outside the checkout like the arm64 root:
#   $EDGECLS_DEVICE_CACHE/x86_64-bookworm-systemd-root.tar.gz   the debootstrapped root (a few minutes, native)
#   $EDGECLS_DEVICE_CACHE/x86_64-bookworm-systemd-root/         the same root unpacked (tests copy what they change)
# A headless board image with an init: minbase + systemd (as init), dbus, python3/venv/pip, CA certificates, curl
# for the probe. gpgv comes with minbase (apt depends on it), as on a board. systemd-nspawn (systemd-container)
# is installed on the host. Needs root. When something is missing it says why and exits 0: the tests then skip.
set -uo pipefail

CACHE="${EDGECLS_DEVICE_CACHE:-/var/cache/edgecls}"
SUITE=bookworm
NAME="x86_64-$SUITE-systemd-root"
TARBALL="$CACHE/$NAME.tar.gz"
ROOT="$CACHE/$NAME"
PACKAGES="debootstrap systemd-container"
INCLUDE="systemd,systemd-sysv,dbus,python3,python3-venv,python3-pip,ca-certificates,curl,iproute2"

skip() { echo "systemd root: skipped: $*"; exit 0; }

[ "$(uname -m)" = "x86_64" ] || skip "host is $(uname -m), not x86_64"
[ "$(id -u)" = "0" ] || skip "needs root (debootstrap, systemd-nspawn)"
mkdir -p "$CACHE" || skip "cannot create $CACHE"
exec 9>"$CACHE/.systemd-root.lock"
flock 9

if ! command -v debootstrap >/dev/null 2>&1 || ! command -v systemd-nspawn >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || skip "no apt-get to install $PACKAGES"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PACKAGES >/dev/null) \
    || skip "could not install $PACKAGES"
fi

# Debian's mirror as apt already reaches it (the first non-security URI in apt's sources).
mirror() {
  local uri
  uri=$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
        | grep -v security | head -n1)
  [ -n "$uri" ] || uri=$(grep -hE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' \
        | grep -v security | head -n1)
  echo "${uri:-http://deb.debian.org/debian}"
}

if [ ! -s "$TARBALL" ]; then
  MIRROR=$(mirror)
  echo "systemd root: building $TARBALL from $MIRROR (debootstrap, native; once per machine)"
  BUILD="$CACHE/$NAME.build"
  rm -rf "$BUILD"
  start=$(date +%s)
  if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$BUILD" "$MIRROR" \
      > "$CACHE/$NAME-debootstrap.log" 2>&1; then
    tail -n 5 "$CACHE/$NAME-debootstrap.log"
    for m in proc sys dev/pts dev; do umount -l "$BUILD/$m" 2>/dev/null; done
    skip "debootstrap failed (log: $CACHE/$NAME-debootstrap.log)"
  fi
  for m in proc sys dev/pts dev; do umount -l "$BUILD/$m" 2>/dev/null; done
  rm -rf "$BUILD"/var/cache/apt/archives/*.deb
  # A booted container needs no getty and no network configuration; a machine-id is made at first boot.
  echo edgecls-board > "$BUILD/etc/hostname"
  : > "$BUILD/etc/machine-id"
  tar -C "$BUILD" -czf "$TARBALL.part" . && mv "$TARBALL.part" "$TARBALL" || skip "could not write $TARBALL"
  rm -rf "$ROOT"
  mv "$BUILD" "$ROOT"
  echo "systemd root: built in $(( $(date +%s) - start )) s"
fi

if [ ! -x "$ROOT/lib/systemd/systemd" ]; then
  echo "systemd root: unpacking $TARBALL"
  rm -rf "$ROOT.part" && mkdir -p "$ROOT.part" && tar -C "$ROOT.part" -xzf "$TARBALL" \
    && rm -rf "$ROOT" && mv "$ROOT.part" "$ROOT" || skip "could not unpack $TARBALL"
fi
echo "systemd root: ready at $ROOT"
