"""Which host a request names, parsed strictly: its one Host header and an absolute-form request target.

The rules are RFC 9112's (section 3.2): an HTTP/1.1 request without a Host header, with more than one Host line,
or with an invalid Host value gets 400; when the request target is in absolute form (``GET http://h/p``), its
authority is the host the request names (3.2.2). The grammar is RFC 3986's (3.2.2, 3.2.3):
``host = IP-literal / IPv4address / reg-name``, ``port = *DIGIT``, and an IP-literal (``[`` IPv6 ``]``) may be
followed by nothing but ``:port``. No userinfo: RFC 9110 (4.2.4) forbids it in an http(s) target.

Measured before this module (issue #30): ``Host: [::1]evil.com`` and ``Host: [::1]@evil.com`` were read as
``::1`` and answered by a loopback-only server; ``GET http://evil.com/...`` with ``Host: localhost`` was
answered; with two Host headers the first won. The checks here are written by hand because they are a dozen
lines of RFC grammar; ``ipaddress`` validates the IPv6 literal.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# RFC 3986 reg-name: unreserved / pct-encoded / sub-delims (an IPv4 address is a reg-name syntactically too).
_REG_NAME = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
_PORT = re.compile(r"[0-9]{0,5}")
_ABSOLUTE = re.compile(r"(?i)https?://")
#: The raw request target, put in the ASGI scope's extensions by the connection protocol (connections.py): ASGI
#: has only the path, and an absolute-form target names a host too.
TARGET_EXTENSION = "edgecls.request_target"


class AuthorityError(ValueError):
    """Not a valid ``host[:port]``; the message says why."""


@dataclass(frozen=True)
class Authority:
    host: str  # lower-case; an IPv6 address without its brackets, compressed (``::1``)
    port: int | None


@dataclass(frozen=True)
class HostRefusal:
    status: int  # 400 (malformed) or 421 (a valid name this server does not answer)
    kind: str  # "bad_host" or "wrong_host"
    message: str


def normalize_host(name: str) -> str:
    """A host name as :class:`Authority` holds it: lower-case, IPv6 unbracketed and compressed."""
    name = name.strip().lower()
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        return ipaddress.IPv6Address(bare).compressed
    except ValueError:
        return name


def parse_authority(text: str) -> Authority:
    """``host[:port]`` per RFC 3986, refusing anything else (userinfo, text after an IPv6 literal, bad ports)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AuthorityError("an IPv6 literal without its closing ']'")
        literal, rest = text[1:end], text[end + 1 :]
        if "%" in literal:  # a zone id names an interface of the client's machine, never this server
            raise AuthorityError("an IPv6 zone id")
        try:
            host = ipaddress.IPv6Address(literal).compressed
        except ValueError as e:
            raise AuthorityError(f"[{literal}] is not an IPv6 address") from e
    else:
        host, colon, port_text = text.partition(":")
        rest = colon + port_text
        if not _REG_NAME.fullmatch(host):
            raise AuthorityError("characters a host name cannot hold")
        host = host.lower()
    if not rest:
        return Authority(host, None)
    if not rest.startswith(":") or not _PORT.fullmatch(rest[1:]):
        raise AuthorityError("only ':port' may follow the host")
    port = int(rest[1:]) if rest[1:] else None
    if port is not None and port > 65535:
        raise AuthorityError(f"port {port} is above 65535")
    return Authority(host, port)


def _shown(value: str) -> str:
    return repr(value[:100])


def absolute_target_authority(target: bytes) -> str | None:
    """The authority of an absolute-form target (``http://HOST:PORT/path``), None for any other form."""
    text = target.decode("latin-1")
    if not _ABSOLUTE.match(text):
        return None
    rest = text.split("://", 1)[1]
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def check_request_host(
    headers: list[tuple[bytes, bytes]], target: bytes | None, http_version: str, accepted: frozenset[str] | None
) -> HostRefusal | None:
    """None when the request names one valid host this server answers (``accepted`` None: any name).

    ``target`` is the raw request target (None when the server did not pass it: then only Host is checked).
    """
    values = [v.decode("latin-1").strip(" \t") for k, v in headers if k == b"host"]
    if len(values) > 1:
        return HostRefusal(400, "bad_host", f"{len(values)} Host headers; a request has exactly one")
    named: Authority | None = None
    if values:
        try:
            named = parse_authority(values[0])
        except AuthorityError as e:
            return HostRefusal(400, "bad_host", f"Host {_shown(values[0])} is not a valid host[:port] ({e})")
    elif http_version != "1.0":
        return HostRefusal(400, "bad_host", "an HTTP/1.1 request without a Host header")
    absolute = absolute_target_authority(target) if target is not None else None
    if absolute is not None:
        if "@" in absolute:
            return HostRefusal(400, "bad_host", "the request target carries user information (user@host)")
        try:
            aimed = parse_authority(absolute)
        except AuthorityError as e:
            return HostRefusal(400, "bad_host", f"request target host {_shown(absolute)} is not valid ({e})")
        if named is not None and named.host != aimed.host:
            return HostRefusal(400, "bad_host", f"the request target names {_shown(aimed.host)} but Host says "
                                                f"{_shown(named.host)}")
        named = aimed
    if named is None or accepted is None or named.host in accepted:
        return None  # HTTP/1.0 without Host: not a browser, nothing to rebind
    return HostRefusal(421, "wrong_host", f"Host {_shown(values[0] if values else absolute or '')} is not this "
                                          "server's: it is bound to loopback and answers only localhost names "
                                          "(--allow-host NAME adds one)")
