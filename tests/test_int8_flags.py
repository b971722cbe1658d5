"""The int8 flags, wired once: ``quantize``, ``export --quantize`` and ``pack --quantize`` take the same flags, default
them to the library's options (export/quant/options.py) and hand the library the same options, the user's
sensitivity cache included; int8's renamed flags still work for this release and its removed ones are refused."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from fixtures_cli import cli_in_process

from edgecls.cli import app
from edgecls.cli.int8_options import INT8_FLAGS
from edgecls.export.quant.options import Int8Images, QuantizeOptions
from edgecls.runtime.errors import EdgeclsError

INT8_COMMANDS = ("quantize", "export", "pack")


def _defaults(command: str) -> dict[str, Any]:
    """``{parameter name: default}`` of ``edgecls COMMAND`` as typer builds it (a choice's default by its value); an
    int8 flag's parameter is named after the field it sets."""
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    return {p.name: getattr(p.default, "value", p.default) for p in params}


def test_every_int8_flag_defaults_to_the_library_default_on_every_command() -> None:
    from edgecls.deploy.pack import PackOptions
    from edgecls.export.export_run import ExportOptions

    library = {**dataclasses.asdict(QuantizeOptions()), **dataclasses.asdict(Int8Images())}
    for command in INT8_COMMANDS:
        defaults = _defaults(command)
        for field in INT8_FLAGS:
            assert defaults[field] == library[field], f"edgecls {command}: {field}"
    # the switches and the command's own int8 settings, against the options they fill in
    export, pack = ExportOptions(), PackOptions(models=(), out="")
    assert _defaults("export")["quantize"] is (export.quantize is not None)
    assert _defaults("export")["qat"] == export.qat_epochs
    assert _defaults("pack")["quantize"] is (pack.quantize is not None)
    assert _defaults("pack")["platform"] == pack.platform


# A valid value other than today's default for every int8 field (a new flag needs one here).
SHIFTED = {
    "max_drop": 2.5, "agreement_on": "all", "allow_over_budget": True, "require_verified": True,
    "calib": "builtin:digits", "val": "builtin:shapes", "calib_images": 7, "val_images": 9, "target": "arm64",
    "reconstruct": "off", "reconstruct_seconds": 42.0,
}

_SHIFT_THEN_READ = """
import dataclasses, json, sys
from edgecls.export.quant.options import Int8Images, QuantizeOptions
shifted = json.loads(sys.argv[1])
for cls in (QuantizeOptions, Int8Images):
    for f in dataclasses.fields(cls):
        f.default = shifted.get(f.name, f.default)
import typer.main
from edgecls.cli import app
commands = typer.main.get_command(app).commands
print(json.dumps({name: {p.name: getattr(p.default, "value", p.default) for p in commands[name].params}
                  for name in sys.argv[2:]}))
"""


def test_a_changed_library_default_changes_every_command() -> None:
    """The commands take each int8 default from the library's field, so changing it there (here in a fresh
    interpreter, before the command line is imported) changes it on quantize, export and pack alike: a default
    retyped anywhere on the command line would keep its old value and fail this."""
    library = {**dataclasses.asdict(QuantizeOptions()), **dataclasses.asdict(Int8Images())}
    assert set(SHIFTED) == set(INT8_FLAGS) and all(SHIFTED[f] != library[f] for f in SHIFTED)
    done = subprocess.run([sys.executable, "-c", _SHIFT_THEN_READ, json.dumps(SHIFTED), *INT8_COMMANDS],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    for command in INT8_COMMANDS:
        assert {f: seen[command][f] for f in SHIFTED} == SHIFTED, command


class _Recorded(EdgeclsError):
    """Raised by the recording stand-ins below: the command got as far as calling the library (``error: recorded``,
    exit status 2)."""


@pytest.fixture
def library_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The library entry points of quantize, export and pack, replaced by recorders of what they are given (the
    command line's parsing and the one builder run for real; the int8 work itself has its own tests). The user's
    cache is ``tmp_path/cache``."""
    import edgecls.deploy.pack as pack_module
    import edgecls.export.export_source as export_module
    import edgecls.export.quant.quantize_file as quantize_module

    calls: dict[str, Any] = {}

    def recorder(name: str, index: int):
        def record(*args: Any, **_kw: Any) -> None:
            calls[name] = args[index]
            raise _Recorded("recorded")

        return record

    monkeypatch.setattr(quantize_module, "quantize_file", recorder("quantize", 1))
    monkeypatch.setattr(export_module, "export_source", recorder("export", 1))
    monkeypatch.setattr(pack_module, "pack", recorder("pack", 0))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return calls


def _int8_of(name: str, options: Any) -> tuple[QuantizeOptions | None, Int8Images]:
    if name == "quantize":
        return options.quantize, options.images
    return options.quantize, options.int8_images  # ExportOptions and PackOptions hold them alike


INT8_ARGS = ["--max-drop", "0.5", "--agreement-on", "all", "--require-verified", "--calib", "builtin:shapes",
             "--val", "builtin:shapes", "--calib-images", "64", "--val-images", "32", "--target", "x86-avx2",
             "--reconstruct", "on", "--max-learning-seconds", "30"]


def test_the_int8_flags_reach_the_library_alike_from_quantize_export_and_pack(library_calls, tmp_path, capsys):
    runs = {
        "quantize": ["quantize", "m.onnx"],
        "export": ["export", "run", "--quantize"],
        "pack": ["pack", "run", "--quantize", "--out", str(tmp_path / "bundle")],
    }
    for name, argv in runs.items():
        code, _, err = cli_in_process([*argv, *INT8_ARGS], capsys)
        assert code == 2 and err.strip() == "error: recorded", (name, err)
    got = {name: _int8_of(name, options) for name, options in library_calls.items()}
    assert set(got) == set(runs)
    quantize, images = got["quantize"]
    assert got["export"] == got["pack"] == (quantize, images)
    assert quantize == QuantizeOptions(
        max_drop=0.5, agreement_on="all", require_verified=True, target="x86-avx2", reconstruct="on",
        reconstruct_seconds=30.0, cache_dir=str(tmp_path / "cache" / "edgecls" / "quantize"),
    )  # the user's sensitivity cache on every command, not only on quantize
    assert images == Int8Images(calib="builtin:shapes", val="builtin:shapes", calib_images=64, val_images=32)


def test_without_quantize_export_and_pack_make_no_int8(library_calls, tmp_path, capsys):
    cli_in_process(["export", "run"], capsys)
    cli_in_process(["pack", "run", "--out", str(tmp_path / "bundle")], capsys)
    assert library_calls["export"].quantize is None and library_calls["pack"].quantize is None


@pytest.mark.parametrize(
    ("old", "new", "check"),
    [
        (["quantize", "m.onnx", "--calib", "builtin:shapes", "--time-budget", "30"], "--max-learning-seconds",
         lambda o: o.quantize.reconstruct_seconds == 30.0),
        (["export", "run", "--quantize", "--time-budget=30"], "--max-learning-seconds",
         lambda o: o.quantize.reconstruct_seconds == 30.0),
        (["pack", "run", "--target", "linux-x86_64", "--out", "b"], "--platform",
         lambda o: o.platform == "linux-x86_64" and o.quantize is None),
        (["pack", "run", "--quantize", "--quantize-target", "x86-vnni", "--out", "b"], "--target",
         lambda o: o.quantize.target == "x86-vnni" and o.platform == "linux-aarch64"),
    ],
    ids=["quantize --time-budget", "export --time-budget", "pack --target PLATFORM", "pack --quantize-target"],
)
def test_an_old_int8_spelling_still_works_with_one_warning(library_calls, capsys, old, new, check):
    code, _, err = cli_in_process(old, capsys)
    assert code == 2 and "error: recorded" in err, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"is renamed {new};" in warnings[0], err
    assert check(library_calls[old[0]])


def test_pack_target_is_the_int8_cpu_as_on_quantize_and_export(library_calls, capsys):
    code, _, err = cli_in_process(["pack", "run", "--quantize", "--target", "arm64", "--platform", "linux-x86_64",
                                   "--out", "b"], capsys)
    assert code == 2 and "warning" not in err, err
    options = library_calls["pack"]
    assert options.quantize.target == "arm64" and options.platform == "linux-x86_64"


@pytest.mark.parametrize(
    ("argv", "instead"),
    [
        (["export", "run", "--quantize", "--distill", "on"], "--reconstruct"),
        (["export", "run", "--quantize", "--distill=off"], "--reconstruct"),
        (["quantize", "m.onnx", "--calib", "c", "--distill", "auto"], "--reconstruct"),
        (["quantize", "m.onnx", "--calib", "c", "--model", "net.py:build"], "only the ONNX file"),
        (["quantize", "m.onnx", "--calib", "c", "--weights", "net.pt"], "only the ONNX file"),
    ],
)
def test_a_removed_int8_flag_is_one_error_line_saying_why_and_what_instead(library_calls, capsys, argv, instead):
    code, out, err = cli_in_process(argv, capsys)
    assert code == 2 and out == "" and not library_calls, err  # refused before the command ran
    [line] = err.strip().splitlines()
    flag = next(a for a in argv if a.startswith("--") and a.split("=")[0] in ("--distill", "--model", "--weights"))
    assert line.startswith(f"error: {argv[0]} {flag.split('=')[0]} was removed in this release: "), line
    assert "lost to layer-wise reconstruction on every measured held-out set" in line and instead in line


def test_export_keeps_its_own_model_flags(library_calls, capsys):
    """--model/--weights are removed from quantize only: export's bring-your-own-model flags stay."""
    code, _, err = cli_in_process(["export", "--model", "net.py:build", "--weights", "net.pt"], capsys)
    assert code == 2 and err.strip() == "error: recorded", err


@pytest.mark.slow  # the tiny run trained, exported and quantized: 119 s at load 10 (beside another test run)
def test_pack_quantize_makes_the_run_int8_for_the_platform_with_the_int8_flags(tiny_run, tmp_path, capsys, monkeypatch):
    from edgecls.export.metadata import read_contract_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "bundle"
    argv = ["pack", str(tiny_run), "--quantize", "--update", "--platform", "linux-x86_64", "--calib-images", "24",
            "--max-drop", "50", "--reconstruct", "off", "--out", str(out), "--json"]
    code, _, err = cli_in_process(argv, capsys)
    assert code == 0, err
    record = read_contract_file(out / "models" / "model.int8.onnx").provenance["quantization"]
    # --target auto is the platform's CPU, and the budget and image flags reached the run's export
    assert record["target"] == "x86-avx2" and record["images"] == 24 and record["max_drop"] == 50.0, record
