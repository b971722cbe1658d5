"""``edgecls update BUNDLE``: install a bundle as a new release beside the running one, check it, switch to it,
and switch back by itself when the restarted service fails its probe.

    verify the bundle (SHA256SUMS, no extra file, signature when this device has a keyring)
    -> stage releases/<id> (models, manifest, the venv of its wheels)
    -> selftest the release with its own edgecls (tolerances and sha256 from the manifest)   refused: nothing changed
    -> pending.json, swap `current`, restart the unit, probe it (serve: /healthz names the model's sha256 and a
       passing golden check; run: active and not restarted)                                   failed: swap back,
       restart, probe the old release again, remove the new one
    -> commit: keep this release and the one before it, remove older releases and unused venvs.

The first install is the same path without a previous release (install.sh makes the venv, then calls this).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgecls.runtime.device import releases
from edgecls.runtime.device.bundle_check import SIGNATURE_NAME, SUMS_NAME, verify_bundle
from edgecls.runtime.device.manifest import (
    MANIFEST_NAME,
    Manifest,
    ServiceEntry,
    ServiceKind,
    read_manifest,
    sha256_file,
)
from edgecls.runtime.device.releases import REQUIREMENTS_NAME, Layout
from edgecls.runtime.device.service import ProbeResult, probe_run, probe_serve, restart, unit_is_active
from edgecls.runtime.device.service_setup import SETTINGS_NAME, read_state, setup_service
from edgecls.runtime.device.unit import read_settings
from edgecls.runtime.errors import EdgeclsError

Log = Callable[[str], None]
UNIT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class UpdateRefused(EdgeclsError):
    """The new release failed a check before the switch (selftest) or after it (probe: rolled back)."""

    exit_status = 1


@dataclass(frozen=True)
class UpdateOptions:
    bundle: Path
    prefix: Path
    unit: str = "edgecls"
    selftest: bool = True
    probe_timeout: float = 30.0  # seconds the restarted service has to pass its probe
    settle: float = 10.0  # run service: seconds it must stay up in one process


@dataclass
class UpdateResult:
    release: str
    previous: str | None
    outcome: str  # installed | updated | rolled back
    probe: str
    seconds: dict[str, float] = field(default_factory=dict)
    token: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("token")  # never into JSON logs
        return out


@contextmanager
def _locked(prefix: Path) -> Iterator[None]:
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EdgeclsError(f"{prefix}: another install or update is running") from None
        yield


def _venv_for(bundle: Path, layout: Layout) -> Path:
    requirements = bundle / REQUIREMENTS_NAME
    if requirements.is_file():
        venv = layout.venv_for(sha256_file(requirements))
        if not (venv / ".complete").is_file():
            raise EdgeclsError(f"{bundle} brings wheels: install it with sh {bundle}/install.sh {layout.prefix}")
        return venv
    current = layout.current_id()
    if current is None:
        raise EdgeclsError(f"{layout.prefix}: no installed release: a models-only update needs one (install.sh)")
    return layout.venvs / Path(os.readlink(layout.release(current) / "venv")).name  # the running release's venv


def _stage(bundle: Path, manifest: Manifest, layout: Layout, venv: Path, release_id: str) -> Path:
    """releases/<id>: the bundle's models, manifest and sums, and a link to the venv; each model re-hashed."""
    final = layout.release(release_id)
    partial = final.with_name(f".{release_id}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "models").mkdir(parents=True)
    for entry in manifest.models.values():
        for rel, digest in ((entry.path, entry.sha256), (entry.golden, entry.golden_sha256)):
            dest = partial / rel
            if not dest.exists():
                shutil.copy2(bundle / rel, dest)
                if sha256_file(dest) != digest:
                    raise EdgeclsError(f"{rel}: the copy in {partial} differs from the manifest (disk error?)")
    for name in (MANIFEST_NAME, SUMS_NAME, SIGNATURE_NAME):
        if (bundle / name).is_file():
            shutil.copy2(bundle / name, partial / name)
    (partial / "venv").symlink_to(Path("../../venvs") / venv.name)
    partial.rename(final)
    return final


def _selftest(release: Path) -> int:
    """The release's own edgecls checks the release (manifest tolerances); refused before the switch. Returns how
    many models passed."""
    try:
        r = subprocess.run([str(release / "venv/bin/edgecls"), "selftest", str(release), "--json"],
                           capture_output=True, text=True, check=False)
    except OSError as e:
        raise UpdateRefused(f"cannot run the new release's edgecls ({e.strerror or e}): nothing was switched") from e
    rows = []
    for line in r.stdout.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    if r.returncode == 0:
        return len(rows)
    problems = []
    for row in rows:
        if not row.get("passed"):
            problems.append(f"{Path(row.get('model', '?')).name}: {'; '.join(row.get('problems', []))}")
    why = "; ".join(problems) or (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
    raise UpdateRefused(f"selftest of the new release failed, nothing was switched: {why[:600]}")


def _probe(layout: Layout, release_id: str, unit: str, service: ServiceEntry, options: UpdateOptions) -> ProbeResult:
    if service.kind is ServiceKind.run:
        return probe_run(unit, options.settle, options.probe_timeout)
    port = int(read_settings(layout.prefix / SETTINGS_NAME).get("EDGECLS_PORT", service.port))
    sha = read_manifest(layout.release(release_id)).models[service.model].sha256
    return probe_serve(unit, port, service.model, sha, options.probe_timeout)


def _recover(layout: Layout, log: Log) -> None:
    """An update interrupted after its switch (power cut, kill): back to the release that was committed."""
    pending = releases.read_pending(layout)
    if pending is None:
        return
    previous, new = pending["previous"], pending["new"]
    if previous and layout.release(previous).is_dir():
        releases.switch_current(layout, previous)
        log(f"update: an earlier update to {new} did not finish: back on {previous}")
    if new and new != previous:
        releases.remove_release(layout, new)
    layout.pending.unlink(missing_ok=True)


def apply_bundle(options: UpdateOptions, log: Log = print) -> UpdateResult:
    """Install or update (see the module docstring); raises :class:`UpdateRefused` when it refused or rolled back."""
    layout = Layout(options.prefix.absolute())
    bundle = options.bundle.absolute()
    if not UNIT_NAME.fullmatch(options.unit):
        raise EdgeclsError(f"--unit {options.unit!r}: a unit name is letters, digits, _ and - (at most 64)")
    t: dict[str, float] = {}
    with _locked(layout.prefix):
        _recover(layout, log)
        t0 = time.monotonic()
        log(f"update: {bundle}: {verify_bundle(bundle)}; every file matches SHA256SUMS")
        manifest = read_manifest(bundle)
        t["verify"] = time.monotonic() - t0
        state = read_state(layout.prefix)
        service = state.service if state is not None else manifest.service
        unit = state.unit if state is not None else options.unit
        if service is None:
            raise EdgeclsError(f"{bundle}: an update bundle, and {layout.prefix} has no install to update")
        if service.model not in manifest.models:
            raise EdgeclsError(f"the service runs {service.model}; {bundle} holds no model of that name")
        venv = _venv_for(bundle, layout)
        previous = layout.current_id()
        release_id = releases.new_release_id(layout, sha256_file(bundle / SUMS_NAME))
        release = _stage(bundle, manifest, layout, venv, release_id)
        try:
            if options.selftest:
                t0 = time.monotonic()
                passed = _selftest(release)
                t["selftest"] = time.monotonic() - t0
                log(f"update: selftest of {release_id} passed: {passed} of {passed} models match their golden "
                    f"outputs ({t['selftest']:.1f} s)")
            setup = setup_service(layout.prefix, unit, service)
        except BaseException:
            releases.remove_release(layout, release_id)
            raise
        result = UpdateResult(release_id, previous, "updated" if previous else "installed", "not probed",
                              t, setup.token, setup.notes)
        releases.mark_pending(layout, release_id, previous)
        releases.switch_current(layout, release_id)
        if previous is not None and unit_is_active(unit):
            t0 = time.monotonic()
            restart(unit)
            probe = _probe(layout, release_id, unit, service, options)
            t["switch_probe"] = time.monotonic() - t0
            if not probe.ok:
                _roll_back(layout, unit, service, options, release_id, previous, probe, t, log)
            result.probe = probe.detail
        elif previous is not None:
            result.notes.append(f"{unit} is not running: switched without a probe (systemctl start {unit})")
        layout.pending.unlink(missing_ok=True)
        result.notes += [f"removed old release {r}" for r in releases.prune(layout, (release_id, previous))]
        return result


def _roll_back(layout: Layout, unit: str, service: ServiceEntry, options: UpdateOptions, new: str, previous: str,
               failed: ProbeResult, t: dict[str, float], log: Log) -> None:
    log(f"update: {new} failed its probe ({failed.detail}): switching back to {previous}")
    t0 = time.monotonic()
    releases.switch_current(layout, previous)
    restart(unit)
    again = _probe(layout, previous, unit, service, options)
    t["rollback"] = time.monotonic() - t0
    releases.remove_release(layout, new)
    layout.pending.unlink(missing_ok=True)
    releases.prune(layout, tuple(p.name for p in layout.releases.iterdir() if not p.name.startswith(".")))
    state = "answers again" if again.ok else f"ALSO FAILS its probe ({again.detail})"
    raise UpdateRefused(
        f"rolled back to {previous}: the new release {new} failed its probe after {failed.seconds:.1f} s "
        f"({failed.detail}); the old release {state} ({t['rollback']:.1f} s)"
    )

