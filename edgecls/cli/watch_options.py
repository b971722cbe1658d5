"""The watched-folder flags ``run`` and ``batch`` share (one name per concept): ``--watch``, ``--settle``,
``--move-done``, shown in their own help panel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.sources.watch_options import WatchOptions

WATCH_PANEL = "Watched folders"

WatchOpt = Annotated[
    bool,
    typer.Option(
        "--watch",
        help="Keep watching the folders: classify each file once, when its writer has finished, until Ctrl-C or "
        "SIGTERM. A restart resumes from the output (run: --csv, required; batch: --out) without redoing a file.",
        rich_help_panel=WATCH_PANEL,
    ),
]
SettleOpt = Annotated[
    float,
    typer.Option(
        "--settle",
        min=0.0,
        help="With --watch: seconds a file's size and modification time must stay unchanged before it is read "
        "(longer than your writer's longest pause).",
        rich_help_panel=WATCH_PANEL,
    ),
]
MoveDoneOpt = Annotated[
    Path | None,
    typer.Option(
        "--move-done",
        help="With --watch: move each file here (same path below the folder) once its result is written durably.",
        rich_help_panel=WATCH_PANEL,
        show_default=False,
    ),
]


def watch_settings(watch: bool, settle: float, move_done: Path | None) -> WatchOptions | None:
    """The WatchOptions the three flags give (None without --watch; --move-done alone is an error)."""
    if not watch:
        if move_done is not None:
            raise EdgeclsError("--move-done needs --watch")
        return None
    return WatchOptions(settle_s=settle, move_done=move_done)
