"""``edgecls pack``: a thin adapter over :func:`edgecls.deploy.pack.pack` (host side; pip, torch to export runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.choices import Platform
from edgecls.cli.int8_options import OUTPUT_PANEL, JsonOutputOpt, int8_flags
from edgecls.cli.options import CAMERA_HELP
from edgecls.deploy.platforms import DEFAULT_PLATFORM
from edgecls.export.quant.options import Int8Settings
from edgecls.runtime.device.manifest import ServiceKind

_DEVICE_PANEL = "Device"
_WHEELS_PANEL = "Wheels"

# Help paragraphs are one line each: the terminal wraps them at its width without breaking a sentence early.
PACK_HELP = (
    "Bundle models and the runtime for a device without internet.\n\n"
    "The bundle holds the .onnx files with their golden outputs, a wheelhouse for the device's platform and "
    "Python (edgecls built here + its dependencies) with a hashed requirements.txt, install.sh (checks every file "
    "against SHA256SUMS, installs offline, self-tests, writes the service's unit), a manifest and a README; it "
    "is written as DIR and DIR.tar.gz. Prints the bundle's fingerprint (sha256 of SHA256SUMS) and, with --sign, "
    "the signing key's fingerprint.\n\n"
    "MODEL: an .onnx file, an export folder, or a training run (exported here). With --quantize a run's int8 "
    "model is made for the device's CPU, not this one: --target auto means arm64 for linux-aarch64 and x86-avx2 "
    "for linux-x86_64.\n\n"
    "Examples:\n"
    "  edgecls pack runs/digits/export --platform linux-aarch64 --service serve \\\n"
    "    --out digits-pi\n"
    "  edgecls pack runs/digits-v2/export --update --out digits-v2"
)


@int8_flags
def pack_command(
    models: Annotated[list[str], typer.Argument(help="Models: .onnx files, export folders, training runs.")],
    out: Annotated[
        Path, typer.Option("--out", help="The bundle folder to write (and OUT.tar.gz).", rich_help_panel=OUTPUT_PANEL)
    ],
    platform: Annotated[
        Platform,  # type: ignore[valid-type]
        typer.Option("--platform", help="The device's platform (linux-armv7l has no onnxruntime wheels).",
                     rich_help_panel=_DEVICE_PANEL),
    ] = Platform(DEFAULT_PLATFORM),
    python: Annotated[
        str,
        typer.Option("--python", help="The device's Python (3.11: Raspberry Pi OS bookworm).",
                     rich_help_panel=_DEVICE_PANEL),
    ] = "3.11",
    extra: Annotated[
        list[str] | None,
        typer.Option("--extra", help="edgecls extras for the device too, e.g. serve (repeatable).",
                     rich_help_panel=_DEVICE_PANEL),
    ] = None,
    service: Annotated[
        ServiceKind,
        typer.Option("--service", help="What the device's unit runs: run (camera -> JSON lines in the journal) or "
                     "serve (HTTP with a token; needs no camera).", rich_help_panel=_DEVICE_PANEL),
    ] = ServiceKind.run,
    camera: Annotated[
        str | None,
        typer.Option("--camera", help="The service's camera: " + CAMERA_HELP + " (run: 0 when not given; serve: "
                     "none).", rich_help_panel=_DEVICE_PANEL, show_default=False),
    ] = None,
    port: Annotated[
        int,
        typer.Option("--port", min=1, max=65535, help="The serve service's TCP port.", rich_help_panel=_DEVICE_PANEL),
    ] = 8000,
    system_site_packages: Annotated[
        bool,
        typer.Option("--system-site-packages", help="The device's venv sees the system's packages (a Pi: Debian's "
                     "python3-picamera2 for the camera).", rich_help_panel=_DEVICE_PANEL),
    ] = False,
    quantize: Annotated[
        bool,
        typer.Option("--quantize", help="Training runs: also make the int8 model, for the device's CPU.",
                     rich_help_panel=OUTPUT_PANEL),
    ] = False,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="Training runs: also make the fp16 model.", rich_help_panel=OUTPUT_PANEL)
    ] = False,
    sign: Annotated[
        str | None,
        typer.Option("--sign", help="gpg key id: sign SHA256SUMS (SHA256SUMS.sig); the device checks it with gpgv.",
                     rich_help_panel=OUTPUT_PANEL),
    ] = None,
    update: Annotated[
        bool,
        typer.Option("--update", help="Models only, for a device that runs edgecls: edgecls update DIR there.",
                     rich_help_panel=OUTPUT_PANEL),
    ] = False,
    json_out: JsonOutputOpt = False,
    edgecls_wheel: Annotated[
        Path | None,
        typer.Option("--edgecls-wheel", help="Use this edgecls wheel (default: build the checkout).",
                     rich_help_panel=_WHEELS_PANEL),
    ] = None,
    find_links: Annotated[
        list[str] | None,
        typer.Option("--find-links", help="Local wheel folder for pip (repeatable).", rich_help_panel=_WHEELS_PANEL),
    ] = None,
    no_index: Annotated[
        bool, typer.Option("--no-index", help="Only --find-links: download nothing.", rich_help_panel=_WHEELS_PANEL)
    ] = False,
    *,
    int8: Int8Settings,
) -> None:
    import sys

    from edgecls.deploy.pack import PackOptions, pack

    options = PackOptions(
        models=tuple(models), out=str(out), platform=platform.value, python=python, extras=tuple(extra or ()),
        quantize=int8.quantize if quantize else None, int8_images=int8.images, fp16=fp16,
        edgecls_wheel=str(edgecls_wheel) if edgecls_wheel else None, find_links=tuple(find_links or ()),
        no_index=no_index, service=service, camera=camera, port=port, system_site_packages=system_site_packages,
        sign=sign, update=update,
    )
    from edgecls.runtime.terminal.text import plain

    result = pack(options, log=lambda m: print(plain(m), file=sys.stderr))  # messages quote model file names
    if json_out:
        typer.echo(json.dumps(result.to_dict()))
        return
    on_device = "edgecls update DIR" if update else "sh install.sh"
    typer.echo(plain(
        f"packed {len(result.models)} model(s) and {len(result.wheels)} wheels for {result.target} "
        f"(Python {result.python}) into {result.out}" + (f" and {result.tarball}" if result.tarball else "")
        + f" in {result.seconds:.0f} s; on the device: {on_device}"
    ))
    typer.echo(f"bundle fingerprint (sha256 of SHA256SUMS): {result.fingerprint}")
    if result.signed_by:
        typer.echo(plain(f"signed by key {result.signed_by}: the device's /etc/edgecls/keyring.gpg must hold it "
                         f"(gpg --export {result.signed_by} > keyring.gpg)"))


def register(app: typer.Typer) -> None:
    app.command("pack", help=PACK_HELP)(pack_command)
