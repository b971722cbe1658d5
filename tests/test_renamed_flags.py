"""Renamed flags: the old spelling is rewritten to the new one with one warning line; removed flags are refused with
one error line; both tables are the changelog's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from edgecls.cli import app
from edgecls.cli.renamed_flags import REMOVED, RENAMES, Removal, RemovedFlagError, Rename, rewrite_argv

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


def test_the_changelog_lists_every_rename() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    for r in RENAMES:
        assert re.search(rf"`edgecls {r.command}[^`]*{re.escape(r.old)}[^`]*`\s*(->|→|\|)\s*`[^`]*{re.escape(r.new)}",
                         changelog), f"CHANGELOG.md does not list {r.command} {r.old} -> {r.new}"


GONE = (Removal("quantize", "--distill", "it lost", "use --reconstruct"),)


def test_a_removed_flag_is_refused_with_why_and_what_instead_on_its_own_command_only() -> None:
    for argv in (["quantize", "m.onnx", "--distill", "on"], ["quantize", "m.onnx", "--distill=on"]):
        with pytest.raises(RemovedFlagError, match=r"^quantize --distill was removed in this release: it lost; use "):
            rewrite_argv(argv, print, TABLE, GONE)
    said: list[str] = []
    kept = ["export", "r", "--distill", "on"], ["quantize", "m.onnx", "--", "--distill"]
    assert [rewrite_argv(argv, said.append, TABLE, GONE) for argv in kept] == list(kept) and not said


def test_every_removed_flag_is_gone_from_its_command_and_listed_in_the_changelog() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    for r in REMOVED:
        assert r.flag not in _options(r.command), f"{r.command} still declares {r.flag}"
        assert re.search(rf"`edgecls {r.command}[^`]*{re.escape(r.flag)}[^`]*`", changelog.split("### Removed")[-1]), (
            f"CHANGELOG.md's Removed section does not list {r.command} {r.flag}")
