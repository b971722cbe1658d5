"""What ``edgecls serve`` allows: bind address, token and Host rules, body/pixel/scan limits, connections, timeouts."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.images.file_guard import MB
from edgecls.runtime.images.prescan.limits import DEFAULT_MAX_PIXELS
from edgecls.runtime.serve.authority import normalize_host


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # clients send "Authorization: Bearer <token>" on every /v1 route
    insecure: bool = False  # allow a non-loopback bind without a token (explicitly asked for)
    top_k: int = 3  # classes per result unless a request asks ?top_k=
    max_batch: int = 8  # images per model call
    max_wait_ms: float = 2.0  # how long a batch may wait for requests already being received/decoded
    max_queue: int = 256  # images waiting for the model before new requests get 503
    max_body_bytes: int = 20 * MB  # --max-body-mb: MB as in --max-file-mb (10**6 bytes)
    max_pixels: int = DEFAULT_MAX_PIXELS  # declared width x height, checked in the header before decoding
    request_timeout_s: float = 30.0  # receive + decode + queue + inference, per request
    drain_timeout_s: float = 30.0  # SIGTERM: how long in-flight requests may take to finish
    decode_threads: int = 2  # uploads decoded in parallel with inference; 0: in the model's thread, per batch
    max_jpeg_scans: int = 100  # JPEG scans (start-of-scan markers), counted before decoding: scan bombs
    header_timeout_s: float = 10.0  # a connection must deliver a request's headers within this (idle sockets)
    keep_alive_s: float = 5.0  # an idle kept-alive connection is closed after this
    max_connections: int = 256  # open connections; lowered to fit the process's file-descriptor limit
    max_header_bytes: int = 64 * 1024  # request line + headers (httptools has no limit of its own)
    max_headers: int = 100  # header lines per request (a flood of tiny headers costs every request that reads them)
    max_connections_per_client: int = 64  # open connections from one IP address (a proxy's clients share one)
    min_body_rate: float = 1024.0  # bytes/s a request body must average once body_grace_s has passed
    body_grace_s: float = 10.0  # a body may arrive at any pace this long (a client's first bytes may lag)
    allowed_hosts: tuple[str, ...] = ()  # extra Host names accepted when bound to loopback (e.g. a proxy's)

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_queue < 1 or self.max_body_bytes < 1 or self.max_pixels < 1:
            raise EdgeclsError("--max-batch-size, --max-queue, --max-body-mb and --max-pixels must be positive")
        if self.max_wait_ms < 0 or self.request_timeout_s <= 0 or self.decode_threads < 0:
            raise EdgeclsError("--max-wait-ms must be >= 0, --request-timeout > 0, --decode-threads >= 0")
        if self.max_jpeg_scans < 1 or self.max_connections < 1 or self.header_timeout_s <= 0 or self.keep_alive_s <= 0:
            raise EdgeclsError("--max-jpeg-scans, --max-connections, --header-timeout, --keep-alive must be positive")
        per_client = self.max_connections_per_client
        if min(self.max_headers, per_client) < 1 or self.body_grace_s <= 0 or self.min_body_rate < 0:
            raise EdgeclsError("--max-headers, --max-connections-per-client, --body-grace must be positive, "
                               "--min-body-rate >= 0")
        if self.token is not None and not self.token.strip():
            raise EdgeclsError("--token must not be empty")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; any other name counts as reachable from outside."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: ServeSettings) -> None:
    """Refuse to expose the model beyond this machine without a token, unless ``--insecure`` says so."""
    if is_loopback(settings.host) or settings.token or settings.insecure:
        return
    raise EdgeclsError(
        f"--host {settings.host} is reachable from other machines: give --token TOKEN (or set EDGECLS_TOKEN; "
        "clients then send 'Authorization: Bearer TOKEN'), or --insecure to serve without one"
    )


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def accepted_hosts(settings: ServeSettings) -> frozenset[str] | None:
    """Host names a loopback-bound server answers (any port), as :func:`authority.normalize_host` writes them;
    None: any (a non-loopback bind).

    DNS rebinding: a web page can point its own name at 127.0.0.1 and read a token-less server through the
    visitor's browser, which then sends that name as Host. A server bound to loopback answers only the
    loopback names (plus ``--allow-host`` ones, e.g. the name a local reverse proxy forwards).
    """
    if not is_loopback(settings.host):
        return None
    return frozenset(normalize_host(h) for h in (*LOOPBACK_NAMES, settings.host, *settings.allowed_hosts))
