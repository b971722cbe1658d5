"""The command line's layout as docs/layout.md states it: one module per command, named after it."""

from __future__ import annotations

import pkgutil
from types import ModuleType

import typer
import typer.main
import typer.models

import edgecls.cli as cli


def test_each_command_module_registers_exactly_its_own_command() -> None:
    modules = {m.name for m in pkgutil.iter_modules(cli.__path__) if m.name.endswith("_cmd")}
    assert {m.__name__.rsplit(".", 1)[1] for m in cli._COMMANDS} == modules  # every *_cmd module is registered
    for module in cli._COMMANDS:
        app = typer.Typer()
        module.register(app)
        names = [c.name for c in app.registered_commands]
        assert names == [module.__name__.rsplit(".", 1)[1].removesuffix("_cmd")], (module.__name__, names)


def _option_defaults(module: ModuleType) -> dict[str, tuple[object, str | None]]:
    """``{flag: (default, help)}`` of every option of the command ``module`` registers, as typer builds it."""
    app = typer.Typer()
    module.register(app)
    command = typer.main.get_command(app)
    return {
        flag: (getattr(p.default, "value", p.default), p.help)  # an enum default compares by its value
        for p in command.params
        if p.param_type_name == "option"  # typer bundles its own click: no isinstance against click's
        for flag in p.opts
    }


def _shared_int8_helps() -> set[str]:
    """The help texts of the options cli/int8_options.py declares once for the commands that make int8 models
    (a command's option with one of these texts was declared through that module)."""
    from edgecls.cli import int8_options

    return {
        meta.help
        for value in vars(int8_options).values()
        for meta in getattr(value, "__metadata__", ())
        if isinstance(meta, typer.models.OptionInfo) and meta.help
    }


def _library_int8_defaults() -> dict[str, dict[str, list[object]]]:
    """``{command: {flag: [the library's default for every field the flag sets]}}``: what each command's int8
    flags fill in (cli/export_cmd.py, quantize_cmd.py, pack_cmd.py) and the default that field has there."""
    from edgecls.deploy.pack import PackOptions
    from edgecls.export.export_run import ExportOptions
    from edgecls.export.quant.distill_export import DistillOptions
    from edgecls.export.quant.options import Int8Images, QuantizeOptions
    from edgecls.export.quant.quantize_source import TorchSource

    quant, images, export, torch_source = QuantizeOptions(), Int8Images(), ExportOptions(), TorchSource()
    pack = PackOptions(models=(), out="")
    budget = {
        "--max-drop": [quant.max_drop],
        "--agreement-on": [quant.agreement_on],
        "--reconstruct": [quant.reconstruct],
        "--target": [quant.target],
        "--allow-over-budget": [quant.allow_over_budget],
        "--require-verified": [quant.require_verified],
    }
    return {
        "export": {
            **budget,
            "--quantize": [export.quantize is not None],
            "--time-budget": [quant.reconstruct_seconds, DistillOptions().time_budget],
            # ExportOptions.distill None learns nothing (export_run.py): the flag's "off".
            "--distill": [export.distill.mode if export.distill is not None else "off"],
            "--qat": [export.qat_epochs],
            "--calib-images": [images.calib_images],
            "--val-images": [images.val_images],
        },
        "quantize": {
            **budget,
            "--time-budget": [quant.reconstruct_seconds, torch_source.time_budget],
            "--distill": [torch_source.distill],
            "--calib-images": [images.calib_images],
            "--val-images": [images.val_images],
        },
        "pack": {"--quantize": [pack.quantize], "--quantize-target": [pack.quantize_target]},
    }


def test_the_int8_flags_default_to_the_library_defaults() -> None:
    """Every command that takes an int8 flag (export, quantize, pack) defaults it to what the library's options
    default to (cli/ keeps its own copies import-free: ``edgecls --help`` loads no torch), for every field the flag
    sets; and no command takes a shared int8 flag this test does not check."""
    shared = _shared_int8_helps()
    library = _library_int8_defaults()
    checked = 0
    for module in cli._COMMANDS:
        name = module.__name__.rsplit(".", 1)[1].removesuffix("_cmd")
        options = _option_defaults(module)
        takes_shared = {flag for flag, (_, help_text) in options.items() if help_text in shared}
        assert takes_shared <= set(library.get(name, {})), f"edgecls {name}: int8 flags not checked here"
        for flag, defaults in library.get(name, {}).items():
            if flag not in options:
                continue  # a flag this command does not offer (--calib-images is quantize's alone today)
            cli_default = options[flag][0]
            assert all(cli_default == d for d in defaults), f"edgecls {name} {flag}={cli_default!r}, library {defaults}"
            checked += 1
    assert len(shared) == 8 and checked >= 20  # the shared flags, export, quantize and pack were all found
