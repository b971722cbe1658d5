#!/usr/bin/env bash
# Prepares the local wheel cache the pack tests build wheelhouses from, so the tests themselves download nothing:
#   $EDGECLS_DEVICE_CACHE/wheels/linux-aarch64-cp311/   the dependencies of edgecls[serve] (the base install and
#   $EDGECLS_DEVICE_CACHE/wheels/linux-x86_64-cp311/    the serve service) for each device platform, pinned by
#                                                        constraints.txt (~91 MB for aarch64 without serve)
# Downloads from PyPI once per machine (pip download --platform ... --only-binary); a cache already complete for
# this constraints.txt is kept. Without network it says why and exits 0 (the pack tests then skip).
set -uo pipefail
cd "$(dirname "$0")/../.."
CACHE="${EDGECLS_DEVICE_CACHE:-/var/cache/edgecls}"
PYTHON="${PYTHON:-.venv/bin/python}"
mkdir -p "$CACHE/wheels" 2>/dev/null || { echo "wheel cache: skipped: cannot create $CACHE/wheels"; exit 0; }
exec 9>"$CACHE/.wheels.lock"
flock 9
stamp=$(sha256sum constraints.txt pyproject.toml "$0" | sha256sum | cut -c1-16)
for target in linux-aarch64 linux-x86_64; do
  dest="$CACHE/wheels/$target-cp311"
  if [ -f "$dest/.complete-$stamp" ]; then echo "wheel cache: $dest ready"; continue; fi
  "$PYTHON" - "$dest" "$target" <<'PY' || { echo "wheel cache: skipped $target (no network or pip failed)"; continue; }
import shutil, sys, tempfile
from pathlib import Path
from edgecls.deploy.platforms import device_target
from edgecls.deploy.wheelhouse import build_edgecls_wheel, download_wheels
dest, device = Path(sys.argv[1]), device_target(sys.argv[2])
dest.mkdir(parents=True, exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    own = build_edgecls_wheel(Path(tmp))
    download_wheels([f"edgecls[serve]=={own.name.split('-')[1]}"], dest, device, "3.11", "cp311",
                    Path("constraints.txt"), [Path(tmp)])
for w in dest.glob("edgecls-*.whl"):  # the checkout's own wheel is built by each pack, never cached
    w.unlink()
print(f"wheel cache: {dest}: {len(list(dest.glob('*.whl')))} wheels")
PY
  rm -f "$dest"/.complete-* && touch "$dest/.complete-$stamp"
done
