"""Every command's ``--help`` reads well on an 80-column terminal: prose wraps where rich wraps it (never at a
line break the source made by hand), examples and lists stay one item per line, nothing is wider than 80 columns
or cut short with an ellipsis."""

from __future__ import annotations

import pytest
import typer.main
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.cli.help_text import keeps_its_line, reflow

WIDTH = 80
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _help(command: str) -> str:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": str(WIDTH), "TERMINAL_WIDTH": str(WIDTH)})
    assert result.exit_code == 0, result.output
    return result.output


def _description(rendered: str) -> list[str]:
    """The help text's lines between the usage line and the first panel (the part rich wraps as prose)."""
    lines = rendered.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:")) + 1
    end = next((i for i, line in enumerate(lines) if line.lstrip().startswith("╭")), len(lines))
    return [line.rstrip() for line in lines[start:end]]


def broken_by_hand(lines: list[str], width: int = WIDTH) -> list[str]:
    """Lines that end although the next line's first word would have fitted after them: rich wraps greedily, so
    such a break is a newline the source put inside a paragraph. A next line indented deeper than the prose, or
    starting a list item, was meant to start its own line."""
    found = []
    margin = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)  # where prose starts
    for line, after in zip(lines, lines[1:], strict=False):
        if not line.strip() or not after.strip() or keeps_its_line(after[margin:]):
            continue
        word = after.split()[0]
        if len(line) + 1 + len(word) < width - 1:  # the panel's right margin: one column
            found.append(f"{line.strip()!r} | {after.strip()!r}")
    return found


def test_the_check_finds_a_hand_made_break_and_passes_lists() -> None:
    wrapped = [" A sentence the source broke", " here, mid-way.", "", " Examples:", "   edgecls run m.onnx x.jpg"]
    assert broken_by_hand(wrapped) == ["'A sentence the source broke' | 'here, mid-way.'"]
    long = " " + "word " * 15 + "end"
    assert broken_by_hand([long[:76], " " + long[76:].strip()]) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_help_at_80_columns_breaks_no_sentence_and_fits(command: str) -> None:
    rendered = _help(command)
    wide = [line for line in rendered.splitlines() if len(line) > WIDTH]
    assert not wide, f"edgecls {command} --help has lines over {WIDTH} columns:\n" + "\n".join(wide)
    cut = [line for line in rendered.splitlines() if "…" in line]
    assert not cut, f"edgecls {command} --help cuts text short:\n" + "\n".join(cut)
    hand = broken_by_hand(_description(rendered))
    assert not hand, f"edgecls {command} --help breaks a sentence by hand:\n" + "\n".join(hand)


@pytest.mark.parametrize("command", COMMANDS)
def test_examples_and_lists_fit_a_line_each(command: str) -> None:
    """A line the help keeps as written (an example, a list item) is not wrapped by rich: it fits in 78 columns
    (80 minus the help's margins). An ``Example:`` paragraph is all examples, its first line too."""
    info = next(i for i in app.registered_commands if i.name == command)
    kept = []
    for paragraph in reflow(info.help or "").split("\n\n"):
        lines = paragraph.splitlines()
        kept += lines if lines[0].startswith("Example") else [x for x in lines[1:] if keeps_its_line(x)]
    long = [line for line in kept if len(line) > WIDTH - 2]
    assert not long, f"edgecls {command}: example or list lines wider than {WIDTH - 2} columns:\n" + "\n".join(long)


def test_option_help_has_no_hand_made_line_break() -> None:
    """rich reflows an option's help in its column; a newline in it would make a ragged half-line."""
    broken = [f"{name} {p.opts}" for name, command in typer.main.get_command(app).commands.items()  # type: ignore[attr-defined]
              for p in command.params if "\n" in (p.help or "")]
    assert not broken, broken


def test_reflow_joins_prose_and_keeps_examples() -> None:
    text = """First line
    of the summary.

    A paragraph wrapped
    by hand, twice
    over.

    Examples:
      edgecls run m.onnx a.jpg
      edgecls run m.onnx b.jpg \\
          --json
    - a list item
    - another
    """
    assert reflow(text).split("\n\n") == [
        "First line of the summary.",
        "A paragraph wrapped by hand, twice over.",
        "Examples:\n  edgecls run m.onnx a.jpg\n  edgecls run m.onnx b.jpg \\\n      --json\n- a list item\n- another",
    ]
