"""The docs never lie about the tool: every link resolves and every command they show exists.

README.md and docs/*.md are read as a newcomer reads them. Each relative link must name a file of the
repository (and, with ``#anchor``, a heading of that file); each ``edgecls COMMAND --option`` shown in a code
block or an inline code span must name a real command and options that command really takes. The check reads
the typer app's own parameter declarations, so a renamed flag fails here before a user types it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The pages people read (the benchmark results' own .md files are generated reports, not docs).
DOC_FILES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "benchmarks").rglob("README.md")),
]

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?$(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"`([^`\n]+)`")
# A command line starts with the program: `edgecls train ...`, `$ .venv/bin/edgecls ...`, `VAR=1 edgecls ...`,
# `python -m edgecls train ...`, `torchrun --nproc-per-node 2 -m edgecls train ...`; prose that merely contains
# the word (an error message quoted in a span) is not a command.
_COMMAND = re.compile(
    r"^(?:\$\s*)?(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:\S*python3?\s+-m\s+|torchrun\s.*?-m\s+|\S*/)?"
    r"edgecls\s+([a-z][a-z0-9-]*)(.*)"
)
_OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
# What ends one command's words: a comment, a shell separator, a pipe to another program.
_COMMAND_END = re.compile(r"\s#\s|\s#$|;|&&|\|\||\s\|\s(?!-)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped except '-' and '_', spaces to '-'."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(md: Path) -> set[str]:
    text = _FENCE.sub("", md.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}


def _links(md: Path) -> Iterator[str]:
    text = _FENCE.sub("", md.read_text(encoding="utf-8"))
    for m in _LINK.finditer(text):
        target = m.group(1)
        if not re.match(r"^[a-z]+:", target):  # http:, https:, mailto: are not checked (no network)
            yield target


def _code_texts(md: Path) -> Iterator[str]:
    """Every line of every fenced block, and every inline code span outside them."""
    text = md.read_text(encoding="utf-8")
    for block in _FENCE.finditer(text):
        yield from block.group(1).splitlines()
    yield from (m.group(1) for m in _INLINE.finditer(_FENCE.sub("", text)))


def _shown_commands(md: Path) -> Iterator[tuple[str, list[str], str]]:
    for text in _code_texts(md):
        m = _COMMAND.match(text.strip().replace("\\|", "|"))
        if not m:
            continue
        rest = _COMMAND_END.split(m.group(2))[0]
        yield m.group(1), _OPTION.findall(rest), text.strip()


def _cli_options() -> dict[str, set[str]]:
    import typer.main

    from edgecls.cli import app

    group = typer.main.get_command(app)
    options: dict[str, set[str]] = {}
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        opts = {"--help"}
        for param in command.params:
            opts.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
        options[name] = opts
    return options


@pytest.mark.parametrize("md", DOC_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(md: Path) -> None:
    broken = []
    for target in _links(md):
        path_part, _, anchor = target.partition("#")
        dest = (md.parent / path_part).resolve() if path_part else md
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    assert not broken, f"{md.relative_to(REPO)}: " + "; ".join(broken)


@pytest.mark.parametrize("md", DOC_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_command_and_option_shown_exists(md: Path) -> None:
    options = _cli_options()
    wrong = []
    for command, opts, where in _shown_commands(md):
        if command not in options:
            wrong.append(f"no command `edgecls {command}` (in: {where})")
            continue
        wrong.extend(f"`edgecls {command}` has no {o} (in: {where})" for o in opts if o not in options[command])
    assert not wrong, f"{md.relative_to(REPO)}:\n" + "\n".join(wrong)


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """The two checks above fail on a broken link, a missing anchor, an unknown command and a renamed flag."""
    (tmp_path / "other.md").write_text("# A heading\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-heading) [gone](missing.md) [bad anchor](other.md#nope)\n\n"
        "```\nedgecls train DATA --epochs 3   # a comment --not-an-option\nedgecls frobnicate x\n```\n"
        "Inline: `edgecls run m.onnx --img-size 32`, `pip install 'edgecls[serve]'`,\n"
        "`newer than edgecls understands`.\n",
        encoding="utf-8",
    )
    assert sorted(_links(page)) == ["missing.md", "other.md#a-heading", "other.md#nope"]
    assert _anchors(tmp_path / "other.md") == {"a-heading"}
    shown = [(c, o) for c, o, _ in _shown_commands(page)]
    assert shown == [("train", ["--epochs"]), ("frobnicate", []), ("run", ["--img-size"])]
    options = _cli_options()
    assert "--epochs" in options["train"] and "frobnicate" not in options
    assert "--img-size" not in options["run"]
