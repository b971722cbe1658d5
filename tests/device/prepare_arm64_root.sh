#!/usr/bin/env bash
# Prepares the arm64 Debian bookworm root the arm64 tests (tests/test_arm64*.py) install packs into, cached
# outside the checkout so a fresh clone reuses it:
#   $EDGECLS_DEVICE_CACHE/arm64-bookworm-root.tar.gz   the debootstrapped root (built once: ~25 min under load,
#                                                       mostly debootstrap's second stage run under qemu)
#   $EDGECLS_DEVICE_CACHE/arm64-bookworm-root/         the same root unpacked (the tests chroot into it)
# A headless board image is the model: Debian's minbase plus python3/venv/pip and CA certificates; no X libraries.
# Needs root (debootstrap, chroot, binfmt_misc). When something is missing it says why and exits 0: the arm64
# tests then skip with a reason; `make test` never breaks on a machine that cannot do this.
set -uo pipefail

CACHE="${EDGECLS_DEVICE_CACHE:-/var/cache/edgecls}"
SUITE=bookworm
TARBALL="$CACHE/arm64-$SUITE-root.tar.gz"
ROOT="$CACHE/arm64-$SUITE-root"
PACKAGES="qemu-user-static debootstrap binfmt-support"

skip() { echo "arm64 root: skipped: $*"; exit 0; }

[ "$(uname -m)" = "x86_64" ] || skip "host is $(uname -m), not x86_64"
[ "$(id -u)" = "0" ] || skip "needs root (debootstrap, chroot, binfmt_misc)"
mkdir -p "$CACHE" || skip "cannot create $CACHE"

# One preparer at a time (two `make test` runs on one machine share the cache).
exec 9>"$CACHE/.arm64-root.lock"
flock 9

if ! command -v debootstrap >/dev/null 2>&1 || [ ! -e /usr/bin/qemu-aarch64-static ] \
    || ! command -v update-binfmts >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || skip "no apt-get to install $PACKAGES"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PACKAGES >/dev/null) \
    || skip "could not install $PACKAGES"
fi

# binfmt_misc: the kernel hands aarch64 ELF files to qemu-aarch64-static. Debian's qemu-user-static registers
# with flag F (the interpreter is opened at registration), so it also works inside the chroot.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || skip "cannot mount binfmt_misc"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ]; then
  cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register 2>/dev/null || true
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || skip "could not register qemu-aarch64 with binfmt_misc"

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
  echo "arm64 root: building $TARBALL from $MIRROR (debootstrap; ~25 min under load, once per machine)"
  BUILD="$CACHE/arm64-$SUITE-root.build"
  rm -rf "$BUILD"
  start=$(date +%s)
  if ! debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      "$SUITE" "$BUILD" "$MIRROR" > "$CACHE/arm64-root-debootstrap.log" 2>&1; then
    tail -n 5 "$CACHE/arm64-root-debootstrap.log"
    # Leave nothing mounted under the half-built root.
    for m in proc sys dev/pts dev; do umount -l "$BUILD/$m" 2>/dev/null; done
    skip "debootstrap failed (log: $CACHE/arm64-root-debootstrap.log)"
  fi
  for m in proc sys dev/pts dev; do umount -l "$BUILD/$m" 2>/dev/null; done
  rm -rf "$BUILD"/var/cache/apt/archives/*.deb
  tar -C "$BUILD" -czf "$TARBALL.part" . && mv "$TARBALL.part" "$TARBALL" || skip "could not write $TARBALL"
  rm -rf "$ROOT"
  mv "$BUILD" "$ROOT"
  echo "arm64 root: built in $(( $(date +%s) - start )) s"
fi

if [ ! -x "$ROOT/usr/bin/python3" ]; then
  echo "arm64 root: unpacking $TARBALL"
  rm -rf "$ROOT.part" && mkdir -p "$ROOT.part" && tar -C "$ROOT.part" -xzf "$TARBALL" \
    && rm -rf "$ROOT" && mv "$ROOT.part" "$ROOT" || skip "could not unpack $TARBALL"
fi
echo "arm64 root: ready at $ROOT"
