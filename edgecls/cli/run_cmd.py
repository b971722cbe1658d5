"""Commands of this module are registered on the app by register()."""

import typer


def register(app: typer.Typer) -> None:
    """Added by the work on this command."""
