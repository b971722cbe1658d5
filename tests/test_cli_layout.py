"""The command line's layout as docs/layout.md states it: one module per command, named after it (the int8 flags'
defaults: tests/test_int8_flags.py)."""

from __future__ import annotations

import pkgutil

import typer

import edgecls.cli as cli


def test_each_command_module_registers_exactly_its_own_command() -> None:
    modules = {m.name for m in pkgutil.iter_modules(cli.__path__) if m.name.endswith("_cmd")}
    assert {m.__name__.rsplit(".", 1)[1] for m in cli._COMMANDS} == modules  # every *_cmd module is registered
    for module in cli._COMMANDS:
        app = typer.Typer()
        module.register(app)
        names = [c.name for c in app.registered_commands]
        assert names == [module.__name__.rsplit(".", 1)[1].removesuffix("_cmd")], (module.__name__, names)
