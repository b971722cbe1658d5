"""Outside strings made safe to print on a terminal: file and folder names, labels, URLs, model metadata.

Anyone who can write into a watched folder or make a model file chooses these strings. Printed as they are,
they can
- drive the terminal: ESC sequences clear the screen, set the window title or make OSC-8 hyperlinks, and a
  newline or carriage return forges or hides a row (``b.png\\nerror: fake line``);
- break Rich: ``[/]`` in a Rich markup string raises ``MarkupError`` (a traceback instead of the row) and
  ``[bold red]b.png`` is printed as a bold red ``b.png``.

:func:`plain` replaces every control character (C0, DEL, C1; newline and CR included), the Unicode line and
paragraph separators and the bidirectional overrides (which reorder what a reader sees, CVE-2021-42574) with a
visible escape (``\\x1b``, ``\\n``, ``\\u202e``); other text, accents and emoji included, is kept as it is.
:func:`rich_text` does that and wraps it in a Rich ``Text`` (never parsed as markup), for table cells, titles
and ``console.print``; :func:`markup` escapes Rich markup too, for a string put inside a markup string of ours
(``f"[yellow]note: {markup(note)}[/]"``). JSON output needs neither: ``json.dumps`` escapes control characters and
keeps the real names.

Written by hand because no library does this one job: ``repr`` and ``unicode_escape`` also escape every
non-ASCII letter, Rich strips a few control codes (BEL, BS, VT, FF, CR) but passes ESC through.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Not control characters to unicodedata, but line breaks to many tools (str.splitlines too) or text reordering.
_EXTRA = ("\u2028", "\u2029", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)))


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# Category Cc is exactly C0 (U+0000-001F), DEL (U+007F) and C1 (U+0080-009F).
_TABLE = {
    code: _escape(chr(code))
    for code in (*range(0x00, 0xA0), *map(ord, _EXTRA))
    if unicodedata.category(chr(code)) == "Cc" or chr(code) in _EXTRA
}


def plain(text: object) -> str:
    """``text`` as one line a terminal shows as written: control characters become visible escapes."""
    return str(text).translate(_TABLE)


def rich_text(text: object, style: str = "") -> Text:
    """``text`` as a Rich ``Text`` (a table cell, a title, ``console.print``): :func:`plain`, never parsed as
    markup, so ``[/]`` and ``[bold red]b.png`` print as written."""
    from rich.text import Text

    return Text(plain(text), style=style)


def markup(text: object) -> str:
    """``text`` to put inside a Rich markup string: :func:`plain` plus Rich's markup escape. (Alone, a trailing
    backslash then shows twice: prefer :func:`rich_text` where the whole string is outside text.)"""
    from rich.markup import escape

    return escape(plain(text))
