"""Command help as the terminal should get it: prose reflowed by rich to the terminal's width, lists kept as lists.

typer (rich markup) keeps every newline of a command's help, so a paragraph wrapped by hand in the source comes
out as ragged half-lines on a terminal narrower than the source's lines. :func:`reflow` joins each paragraph's
lines into one (rich wraps it); a line that starts indented, or with ``- ``, keeps its own line: examples, lists
and continuation lines of a long example stay as written.
"""

from __future__ import annotations

import inspect

#: A line that starts with one of these (after its indentation) is a list item: it keeps its own line.
LIST_MARKS = ("- ", "* ")


def keeps_its_line(line: str) -> bool:
    """True for a line that must start a line of its own in the help: indented, or a list item."""
    return line[:1].isspace() or line.lstrip().startswith(LIST_MARKS)


def _reflow_paragraph(paragraph: str) -> str:
    lines: list[str] = []
    for line in paragraph.splitlines():
        if lines and not keeps_its_line(line):
            lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
        else:
            lines.append(line.rstrip())
    return "\n".join(lines)


def reflow(text: str) -> str:
    """``text`` (a docstring or help string) with each prose paragraph on one line; blank lines still separate
    paragraphs."""
    return "\n\n".join(_reflow_paragraph(p) for p in inspect.cleandoc(text).split("\n\n"))
