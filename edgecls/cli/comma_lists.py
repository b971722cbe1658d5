"""Sweep flags: ``bench`` takes lists where other commands take one value (``--batch-size 1,8``, ``--threads 1,2``,
``--precision f32,bf16``), comma-separated, repeated, or both; each item has the type the same flag has elsewhere.

typer parses each occurrence with the parser of :func:`comma_list` (a list per occurrence); :func:`joined` makes
the one tuple the library takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import typer

T = TypeVar("T")


def comma_list(item: Callable[[str], T], what: str) -> Callable[[str], list[T]]:
    """A typer ``parser``: ``"1,8"`` -> ``[item("1"), item("8")]``; a bad item is typer's one-line usage error
    naming ``what`` an item must be."""

    def parse(text: str) -> list[T]:
        try:
            values = [item(x.strip()) for x in str(text).split(",") if x.strip()]
        except ValueError:
            values = []
        if not values:
            raise typer.BadParameter(f"{text!r}: takes {what}, comma-separated")
        return values

    return parse


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def joined(occurrences: Sequence[Sequence[T]] | None) -> tuple[T, ...] | None:
    """Every occurrence's items in order, duplicates dropped; None when the flag was not given."""
    if not occurrences:
        return None
    return tuple(dict.fromkeys(x for items in occurrences for x in items))
