# Shared by the root preparers (prepare_arm64_root.sh, prepare_systemd_root.sh); sourced, not run. Needs CACHE,
# SUITE and WHAT (the root's name in messages). Every failure says why and exits 0: the tests that need the root
# then skip with the reason, and `make device-root` never fails on a machine that cannot do this.

skip() { echo "$WHAT: skipped: $*"; exit 0; }

# prepare_host LOCKNAME PACKAGES COMMAND...: an x86-64 host, root, the cache folder, one preparer at a time (two
# `make test` runs share the cache), and PACKAGES installed with apt when one of COMMAND... is missing.
prepare_host() {
  local lock=$1 packages=$2 cmd missing=0
  shift 2
  [ "$(uname -m)" = "x86_64" ] || skip "host is $(uname -m), not x86_64"
  [ "$(id -u)" = "0" ] || skip "needs root (debootstrap, chroot, mounts)"
  mkdir -p "$CACHE" || skip "cannot create $CACHE"
  exec 9>"$CACHE/$lock"
  flock 9
  for cmd in "$@"; do command -v "$cmd" >/dev/null 2>&1 || [ -e "$cmd" ] || missing=1; done
  if [ "$missing" = 1 ]; then
    command -v apt-get >/dev/null 2>&1 || skip "no apt-get to install $packages"
    # shellcheck disable=SC2086  # a list of package names
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null) \
      || skip "could not install $packages"
  fi
}

# Debian's mirror as apt already reaches it (the first non-security URI in apt's sources).
mirror() {
  local uri
  uri=$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
        | grep -v security | head -n1)
  [ -n "$uri" ] || uri=$(grep -hE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' \
        | grep -v security | head -n1)
  echo "${uri:-http://deb.debian.org/debian}"
}

# build_root NAME [DEBOOTSTRAP OPTIONS...]: debootstrap $SUITE into $CACHE/NAME, cached as NAME.tar.gz (once
# per machine). A function `customize_root DIR`, when defined, runs on the built root before it is packed.
build_root() {
  local name=$1 build log start mirror_uri
  shift
  [ -s "$CACHE/$name.tar.gz" ] && return 0
  mirror_uri=$(mirror)
  build="$CACHE/$name.build"
  log="$CACHE/$name-debootstrap.log"
  echo "$WHAT: building $CACHE/$name.tar.gz from $mirror_uri (debootstrap; once per machine)"
  rm -rf "$build"
  start=$(date +%s)
  if ! debootstrap "$@" "$SUITE" "$build" "$mirror_uri" > "$log" 2>&1; then
    tail -n 5 "$log"
    for m in proc sys dev/pts dev; do umount -l "$build/$m" 2>/dev/null; done  # nothing left mounted
    skip "debootstrap failed (log: $log)"
  fi
  for m in proc sys dev/pts dev; do umount -l "$build/$m" 2>/dev/null; done
  rm -rf "$build"/var/cache/apt/archives/*.deb
  if command -v customize_root >/dev/null 2>&1; then customize_root "$build"; fi
  tar -C "$build" -czf "$CACHE/$name.tar.gz.part" . && mv "$CACHE/$name.tar.gz.part" "$CACHE/$name.tar.gz" \
    || skip "could not write $CACHE/$name.tar.gz"
  rm -rf "${CACHE:?}/$name"
  mv "$build" "$CACHE/$name"
  echo "$WHAT: built in $(( $(date +%s) - start )) s"
}

# unpack_root NAME FILE: unpack the cached tarball unless the root already holds FILE.
unpack_root() {
  local name=$1 file=$2 root="$CACHE/$1"
  if [ ! -e "$root/$file" ]; then
    echo "$WHAT: unpacking $CACHE/$name.tar.gz"
    rm -rf "$root.part" && mkdir -p "$root.part" && tar -C "$root.part" -xzf "$CACHE/$name.tar.gz" \
      && rm -rf "$root" && mv "$root.part" "$root" || skip "could not unpack $CACHE/$name.tar.gz"
  fi
  echo "$WHAT: ready at $root"
}
