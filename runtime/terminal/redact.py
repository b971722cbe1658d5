"""Secrets out of anything shown: the one place a source or message loses its URL credentials.

A stream URL may carry a user name and password (``rtsp://admin:hunter2@cam/stream``). OpenCV/FFmpeg need
the URL as given, so :class:`~edgecls.runtime.sources.source_specs.SourceSpec` keeps it in ``target`` for opening;
everything that *shows* a source or a message that may quote one (result rows, error rows, CSV tables, the
console, serve's replies and banner, the CLI's error line) passes it through :func:`redact` first.
"""

from __future__ import annotations

import re

#: What replaces the userinfo of a URL.
REDACTED = "***"

# scheme://USERINFO@: RFC 3986 (3.2.1) makes userinfo the part of the authority before its last "@", and the
# authority end at the first "/", "?" or "#". Passwords are typed unencoded, though, and may hold any of these
# (``rtsp://admin:se/cret@cam/`` was shown in full when the authority ended at the "/"), while OpenCV/FFmpeg take
# the URL as typed. So the userinfo is everything up to the last "@" of the URL as written (up to whitespace):
# hiding more than the userinfo of an odd URL (``http://cam/a@b`` shows as ``http://***@b``) beats showing part of
# a password. Schemes in any case (``RTSP://``).
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>\S*)@")


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***`` (``rtsp://***@cam/stream``)."""
    if "@" not in text:  # the common case costs one scan
        return text
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
