"""Flags renamed so that one concept has one name across every command: the old spellings keep working for one
release, each with a one-line ``warning:`` naming the new spelling.

The old spelling is rewritten in ``argv`` before typer parses it, so each command declares only its new flags and
``--help`` shows only them. ``RENAMES`` is the list CHANGELOG.md gives (tests/test_renamed_flags.py checks that
every entry is in the changelog and that the old spelling reaches the command as the new one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rename:
    """``edgecls COMMAND OLD VALUE`` means ``edgecls COMMAND NEW VALUE`` (for this release).

    ``when``: only values it accepts are renamed (a flag whose old values split between two new flags, e.g. a
    platform given to pack's ``--target`` is its ``--platform``); None: every value.
    """

    command: str
    old: str
    new: str
    when: Callable[[str], bool] | None = None

    def matches(self, value: str | None) -> bool:
        return self.when is None or (value is not None and self.when(value))


#: Every rename of this release, in the order CHANGELOG.md lists them.
RENAMES: tuple[Rename, ...] = ()


def _split(arg: str) -> tuple[str, str | None]:
    """``--name=value`` -> (``--name``, ``value``); anything else -> (arg, None)."""
    if arg.startswith("--") and "=" in arg:
        name, value = arg.split("=", 1)
        return name, value
    return arg, None


def rewrite_argv(argv: Sequence[str], warn: Callable[[str], None], renames: Sequence[Rename] = RENAMES) -> list[str]:
    """``argv`` (without the program name) with the old spellings of its command's renamed flags replaced.

    Only the command's own flags are looked at: the first argument names the command; everything after ``--`` is
    left alone (file names that look like flags)."""
    if not argv:
        return []
    command, out, i = argv[0], [argv[0]], 1
    mine = [r for r in renames if r.command == command]
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out += argv[i:]
            break
        name, inline = _split(arg)
        value = inline if inline is not None else (argv[i + 1] if i + 1 < len(argv) else None)
        rename = next((r for r in mine if r.old == name and r.matches(value)), None)
        if rename is None:
            out.append(arg)
        else:
            warn(f"{command} {rename.old} is renamed {rename.new}; the old spelling goes in the next release")
            out.append(f"{rename.new}={inline}" if inline is not None else rename.new)
        i += 1
    return out
