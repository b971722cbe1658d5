"""``edgecls pack``: a thin adapter over :func:`edgecls.deploy.pack.pack` (host side; pip, torch to export runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.options import JsonOpt

PACK_HELP = """Bundle models and the runtime for a device without internet: the .onnx files with their golden
outputs, a wheelhouse for the device's platform and Python (edgecls built here + its dependencies), install.sh
(offline install into a venv, then `edgecls selftest`), a systemd unit template and a README; DIR and DIR.tar.gz.

MODEL: an .onnx file, an export folder, or a training run (exported here; with --quantize its int8 model is made
for the device: quantize --target arm64 for linux-aarch64, x86-avx2 for linux-x86_64).

Example:  edgecls pack runs/digits/export --target linux-aarch64 --out digits-pi
"""


def pack_command(
    models: Annotated[list[str], typer.Argument(help="Models: .onnx files, export folders, training runs.")],
    out: Annotated[Path, typer.Option("--out", help="The bundle folder to write (and OUT.tar.gz).")],
    target: Annotated[
        str, typer.Option("--target", help="The device: linux-aarch64, linux-x86_64 (linux-armv7l has no wheels).")
    ] = "linux-aarch64",
    python: Annotated[str, typer.Option("--python", help="The device's Python (3.11: Raspberry Pi OS bookworm).")] = (
        "3.11"
    ),
    extra: Annotated[
        list[str] | None, typer.Option("--extra", help="edgecls extras for the device too, e.g. serve (repeatable).")
    ] = None,
    quantize: Annotated[
        bool, typer.Option("--quantize", help="Training runs: also make the int8 model, for the device's CPU.")
    ] = False,
    quantize_target: Annotated[
        str | None,
        typer.Option("--quantize-target", help="Override the int8 target (x86-vnni for a VNNI x86 fleet)."),
    ] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Training runs: also make the fp16 model.")] = False,
    edgecls_wheel: Annotated[
        Path | None, typer.Option("--edgecls-wheel", help="Use this edgecls wheel (default: build the checkout).")
    ] = None,
    find_links: Annotated[
        list[str] | None, typer.Option("--find-links", help="Local wheel folder for pip (repeatable).")
    ] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Only --find-links: download nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    import sys

    from edgecls.deploy.pack import PackOptions, pack

    options = PackOptions(
        models=tuple(models), out=str(out), target=target, python=python, extras=tuple(extra or ()),
        quantize=quantize, quantize_target=quantize_target, fp16=fp16,
        edgecls_wheel=str(edgecls_wheel) if edgecls_wheel else None, find_links=tuple(find_links or ()),
        no_index=no_index,
    )
    from edgecls.runtime.terminal_text import plain

    result = pack(options, log=lambda m: print(plain(m), file=sys.stderr))  # messages quote model file names
    if json_out:
        typer.echo(json.dumps(result.to_dict()))
        return
    typer.echo(plain(
        f"packed {len(result.models)} model(s) and {len(result.wheels)} wheels for {result.target} "
        f"(Python {result.python}) into {result.out}" + (f" and {result.tarball}" if result.tarball else "")
        + f" in {result.seconds:.0f} s; on the device: sh install.sh"
    ))


def register(app: typer.Typer) -> None:
    app.command("pack", help=PACK_HELP)(pack_command)
