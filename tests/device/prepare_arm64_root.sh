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

WHAT="arm64 root"

. "$(dirname "$0")/debian_root.sh"
prepare_host .arm64-root.lock "qemu-user-static debootstrap binfmt-support" debootstrap \
  /usr/bin/qemu-aarch64-static update-binfmts

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

build_root "arm64-$SUITE-root" --arch=arm64 --variant=minbase \
  --include=python3,python3-venv,python3-pip,ca-certificates
unpack_root "arm64-$SUITE-root" usr/bin/python3
