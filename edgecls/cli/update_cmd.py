"""``edgecls update BUNDLE``: on the device, install a bundle as a new release, check it, switch, probe, and
switch back by itself when the service fails its probe (:func:`edgecls.runtime.device.update.apply_bundle`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.options import JsonOpt

UPDATE_HELP = """On the device: install BUNDLE (made by `edgecls pack`, or `edgecls pack --update` for models only)
as a new release beside the running one. The bundle is checked against its SHA256SUMS (and signature, when
/etc/edgecls/keyring.gpg exists), the new release is self-tested with the manifest's tolerances, then the
`current` link is swapped, the service restarted and probed (serve: /healthz names the new model's sha256 and a
passing golden check; run: it stays up). When the probe fails the old release is put back and restarted.
The last two releases are kept; the unit, its settings and the token are never rewritten.

Exit status: 0 installed/updated, 1 refused by the selftest or rolled back, 2 the bundle or prefix is unusable.

Example (install.sh runs it once the venv is made):
  edgecls update /tmp/digits-update
"""


def _default_prefix() -> Path:
    """The prefix this edgecls was installed into (PREFIX/venvs/<h>/bin/edgecls), else /opt/edgecls."""
    venv = Path(sys.prefix)
    return venv.parents[1] if venv.parent.name == "venvs" else Path("/opt/edgecls")


def update_command(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder made by edgecls pack.")],
    prefix: Annotated[
        Path | None, typer.Option("--prefix", help="Where edgecls is installed (default: this edgecls's own).")
    ] = None,
    unit: Annotated[
        str, typer.Option("--unit", help="The systemd unit's name, at the first install (letters, digits, _ -).")
    ] = "edgecls",
    skip_selftest: Annotated[
        bool, typer.Option("--skip-selftest", help="Switch without the selftest (only when it was run by hand).")
    ] = False,
    probe_timeout: Annotated[
        float, typer.Option("--probe-timeout", min=1.0, help="Seconds the restarted service has to pass its probe.")
    ] = 30.0,
    json_out: JsonOpt = False,
) -> None:
    from edgecls.runtime.device.update import UpdateOptions, apply_bundle

    options = UpdateOptions(bundle=bundle, prefix=prefix or _default_prefix(), unit=unit,
                            selftest=not skip_selftest, probe_timeout=probe_timeout)
    result = apply_bundle(options, log=lambda m: print(m, file=sys.stderr))
    if result.token:  # shown once, on the terminal of the person installing; kept in the settings file
        print(f"serve token (kept in {options.prefix}/edgecls.env, mode 600): {result.token}", file=sys.stderr)
    if json_out:
        typer.echo(json.dumps(result.to_dict()))
        return
    for note in result.notes:
        typer.echo(note)
    typer.echo(f"{result.outcome} release {result.release} in {options.prefix} ({result.probe})")


def register(app: typer.Typer) -> None:
    app.command("update", help=UPDATE_HELP)(update_command)
