"""``edgecls selftest DIR|MODEL``: the on-device parity check (numpy, OpenCV, onnxruntime only).

The flags become one :class:`~edgecls.runtime.device.selftest.SelftestOptions` for
:func:`edgecls.runtime.device.selftest.selftest`; this prints a table (or JSON Lines) and exits 0 when every model
matches its golden file, 1 on a mismatch, 2 when nothing could be checked. ``--camera N|pi:N`` or ``--source
URL|FILE`` also (or only) grabs ``--frames`` frames from that camera, stream or video file
(:mod:`edgecls.runtime.sources.grab_check`): one line (or one JSON object) with the frame size and rate, exit 1 when
it cannot grab them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from edgecls.cli.options import CameraOpt, JsonOpt, ProviderOpt, ThreadsOpt

SELFTEST_HELP = """Check on this device that each model computes what the exporting machine computed: run its
golden inputs (the golden file written by export, packed beside it by `edgecls pack`) with the providers here and
compare with the golden outputs: fp32 tight (max |d| <= 1e-3 of the logit scale), fp16 and int8 by top-1 agreement
and a bound. Prints model, provider, ISA found, max |d|, agreement, ms; exit 1 on a mismatch.

With --camera (or --source), also grab --frames frames from a camera (or a stream URL or video file) and print
the frame size and rate (exit 1 when it cannot).

Examples:
  edgecls selftest bundle/models
  edgecls selftest model.int8.onnx
  edgecls selftest --camera pi:0 --frames 60
  edgecls selftest --source rtsp://127.0.0.1:8554/cam
"""


def selftest_command(
    target: Annotated[
        Path | None,
        typer.Argument(help="A model (.onnx) or a folder of them (a pack, an export dir).", show_default=False),
    ] = None,
    provider: ProviderOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
    camera: CameraOpt = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Also grab frames from this stream URL or video file.", show_default=False),
    ] = None,
    frames: Annotated[int, typer.Option("--frames", min=1, help="Frames --camera or --source grabs.")] = 30,
) -> None:
    from edgecls.runtime.errors import EdgeclsError

    if camera is not None and source is not None:
        raise EdgeclsError("give either --camera N or --source URL|FILE, not both")
    live = camera if camera is not None else source
    if target is None and live is None:
        raise EdgeclsError("nothing to check: give a model or folder of models, and/or --camera N or --source URL")
    passed = _check_live(live, camera is not None, frames, json_out) if live is not None else True
    if target is not None:
        from edgecls.runtime.device.selftest import SelftestOptions, selftest

        rows = selftest(SelftestOptions(target=target, provider=provider, threads=threads))
        if json_out:
            for row in rows:
                typer.echo(json.dumps(row.to_dict()))
        else:
            _print_table(rows)
        passed = passed and all(r.passed for r in rows)
    raise typer.Exit(0 if passed else 1)


def _check_live(spec: str, is_camera: bool, frames: int, json_out: bool) -> bool:
    """Grab ``frames`` frames from the camera or source ``spec``; one line (or JSON object) on stdout, notes on
    stderr."""
    from edgecls.runtime.sources.grab_check import grab_frames, grab_source
    from edgecls.runtime.sources.live_capture import quiet_backend_logs
    from edgecls.runtime.sources.source_specs import parse_camera
    from edgecls.runtime.terminal.text import plain

    quiet_backend_logs()
    source = parse_camera(spec) if is_camera else grab_source(spec)
    report = grab_frames(source, frames, on_event=lambda _s, m: typer.echo(plain(f"note: {m}"), err=True))
    typer.echo(json.dumps(report.to_dict()) if json_out else plain(report.line()))
    return report.ok


def _print_table(rows: list) -> None:
    from rich.console import Console
    from rich.table import Table

    from edgecls.runtime.terminal.text import plain, rich_text

    # A log or a pipe (a service's journal, install.sh's output) gets the whole table, not 80 squeezed columns.
    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title="selftest: outputs here vs the golden file", title_justify="left")
    for name in ("model", "variant", "provider", "ISA found", "max |d|", "agreement", "ms/image", "result"):
        table.add_column(name, justify="right" if name in ("max |d|", "agreement", "ms/image") else "left")
    for r in rows:
        # The model's file name and its contract's variant come from the files checked: text, never markup.
        table.add_row(
            rich_text(Path(r.model).name), rich_text(r.variant), rich_text(r.provider), rich_text(r.isa),
            f"{r.max_abs_diff:.2g}", f"{r.agreement:.0%}", f"{r.ms_per_image:.2f}",
            "[green]ok[/green]" if r.passed else "[bold red]MISMATCH[/bold red]",
        )
    console.print(table)
    for r in rows:
        for w in r.warnings:
            console.print(plain(f"warning: {Path(r.model).name}: {w}"), style="yellow", markup=False)
        for p in r.problems:
            console.print(plain(f"mismatch: {Path(r.model).name}: {p}"), style="bold red", markup=False)
    ok = sum(r.passed for r in rows)
    console.print(f"{ok} of {len(rows)} models match their golden outputs", markup=False)


def register(app: typer.Typer) -> None:
    app.command("selftest", help=SELFTEST_HELP)(selftest_command)
