"""Renamed flags: the old spelling is rewritten to the new one with one warning line; the table is the changelog's."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from edgecls.cli import app
from edgecls.cli.renamed_flags import NEW_MEANINGS, RENAMES, Rename, rewrite_argv

REPO = Path(__file__).resolve().parents[1]
TABLE = (
    Rename("run", "--workers", "--decode-threads"),
    Rename("pack", "--target", "--platform", when=lambda v: v.startswith("linux-")),
)


def test_old_spellings_become_new_ones_with_one_warning_each() -> None:
    said: list[str] = []
    argv = ["run", "m.onnx", "--workers", "3", "--workers=4", "--top-k", "2", "--", "--workers"]
    assert rewrite_argv(argv, said.append, TABLE) == [
        "run", "m.onnx", "--decode-threads", "3", "--decode-threads=4", "--top-k", "2", "--", "--workers"]
    assert said == ["run --workers is renamed --decode-threads; the old spelling goes in the next release"] * 2


def test_a_rename_applies_to_its_own_command_and_values_only() -> None:
    said: list[str] = []
    assert rewrite_argv(["serve", "m.onnx", "--workers", "3"], said.append, TABLE) == ["serve", "m.onnx",
                                                                                      "--workers", "3"]
    assert rewrite_argv(["pack", "m.onnx", "--target", "arm64"], said.append, TABLE)[2] == "--target"
    assert rewrite_argv(["pack", "m.onnx", "--target", "linux-aarch64"], said.append, TABLE)[2] == "--platform"
    pack = rewrite_argv(["pack", "m.onnx", "--target=linux-aarch64"], said.append, TABLE)
    assert pack[2] == "--platform=linux-aarch64"
    assert len(said) == 2 and rewrite_argv([], said.append, TABLE) == []


def _options(command: str) -> set[str]:
    click_app = typer.main.get_command(app)
    return {o for p in click_app.commands[command].params for o in getattr(p, "opts", [])}


def test_every_rename_names_a_flag_the_command_has_and_an_old_one_it_no_longer_declares() -> None:
    for r in RENAMES:
        have = _options(r.command)
        assert r.new in have, f"{r.command} has no {r.new}"
        if r.when is None:  # a value-dependent rename keeps the old flag for its other values
            assert r.old not in have, f"{r.command} still declares {r.old}: its --help would show both"


def _listed(changelog: str, command: str, old: str, new: str) -> bool:
    """``old`` -> ``new`` in the changelog: its table's cells (``| `edgecls run --workers N` | `edgecls run
    --decode-threads N` |``) or an arrow between the two spellings."""
    cell = rf"`edgecls {command}[^`]*{re.escape(old)}(?=[\s=`])[^`]*`\s*(->|→|\|)\s*`edgecls {command}[^`]*"
    return re.search(cell + rf"{re.escape(new)}(?=[\s=`])", changelog) is not None


def test_the_changelog_lists_every_rename_and_new_meaning() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    for r in RENAMES:
        assert _listed(changelog, r.command, r.old, r.new), f"CHANGELOG.md does not list {r.command} {r.old} -> {r.new}"
    for m in NEW_MEANINGS:
        old, new = f"{m.flag} {m.value}", m.before
        assert _listed(changelog, m.command, old, new), f"CHANGELOG.md does not list {m.command} {old} -> {new}"
