"""An engine's exception as the one line a user reads, without losing its cause.

onnxruntime and OpenVINO put the cause of a failed load on a later line: OpenVINO stacks one
``Exception from src/.../core.cpp:117:`` line per layer it unwinds, then ``Check '...' failed at <file>:<line>:``,
and only then the sentence that matters (``[CPU] ... No suitable implementations ...``). Keeping the first line
kept only the location. :func:`short_engine_message` drops the location lines and keeps the sentences, capped;
the full text travels on the error (``EdgeclsError.detail``) for ``--verbose``.
"""

from __future__ import annotations

import re

#: Lines that only say where in the engine's C++ the error passed through.
_LOCATION = re.compile(
    r"^(Exception from \S+:\d+:?|Check '.*' failed at \S+:\d+:?|\[ ?(ERROR|FAIL) ?\] ?)\s*$", re.IGNORECASE
)
_LOCATION_PREFIX = re.compile(r"^(Exception from \S+:\d+:\s*|Check '.*' failed at \S+:\d+:\s*)")
MAX_CHARS = 300


def short_engine_message(error: BaseException, limit: int = MAX_CHARS) -> str:
    """The sentences of an engine's exception on one line (locations dropped), at most ``limit`` characters;
    the exception's type name when it has no text."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    kept: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or _LOCATION.match(line):
            continue
        line = _LOCATION_PREFIX.sub("", line).strip()
        if line and line not in kept:
            kept.append(line)
    short = " ".join(kept) if kept else text.splitlines()[0].strip()
    return short if len(short) <= limit else short[: limit - 3].rstrip() + "..."
