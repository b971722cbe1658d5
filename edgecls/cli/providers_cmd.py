"""``edgecls providers``: the execution providers and devices onnxruntime offers here, as a table or JSON Lines."""

from __future__ import annotations

import typer

from edgecls.cli.options import JsonOpt


def providers(json_out: JsonOpt = False) -> None:
    """Execution providers and devices available here (plugin EPs are registered when installed).

    Example:  edgecls providers --json
    """
    import dataclasses
    import json

    import onnxruntime as ort

    from edgecls.runtime.providers.catalog import describe_providers

    rows = describe_providers()
    if json_out:
        for r in rows:
            print(json.dumps(dataclasses.asdict(r)))
        return
    from rich.console import Console
    from rich.table import Table

    from edgecls.runtime.terminal.text import rich_text

    table = Table(title=f"onnxruntime {ort.__version__} execution providers", show_edge=False)
    table.add_column("provider", no_wrap=True)
    for col in ("short name", "available", "devices", "source"):
        table.add_column(col)
    for r in rows:
        available = "yes" if r.available else "no"
        # Device names and plugin paths come from drivers and the environment: text, never markup.
        cells = (r.provider, ", ".join(r.short_names), available, "; ".join(r.devices), r.source)
        table.add_row(*map(rich_text, cells))
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("providers")(providers)
