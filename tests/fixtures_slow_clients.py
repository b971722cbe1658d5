"""Slow-body attackers for ``edgecls serve`` (issue #30 item 7): connections that send a POST's headers at once and
then one body byte every ``interval`` seconds, with a ``Content-Length`` body or a chunked one, reconnecting
whenever the server closes one (as an attacker would). Used by tests/test_serve_connections.py and
benchmarks/serve_slow_bodies.py; raw sockets on loopback, one thread for all of them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter


def _head(host: str, port: int, chunked: bool) -> bytes:
    length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: 1000000"
    return (b"POST /v1/classify HTTP/1.1\r\nHost: " + f"{host}:{port}".encode() + b"\r\nContent-Type: image/jpeg\r\n"
            + length + b"\r\n\r\n")


class SlowBodies:
    """``n`` slow-body connections to ``url`` from the source addresses ``sources`` (round robin)."""

    def __init__(self, url: str, n: int, chunked: bool = False, interval: float = 2.0,
                 sources: tuple[str, ...] = ("127.0.0.1",)) -> None:
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        self.address = (host, int(port))
        self.n, self.chunked, self.interval, self.sources = n, chunked, interval, sources
        self.opened = 0
        self.closed_by_server = 0
        self.answers: Counter[int] = Counter()  # status codes the server sent before closing (408, ...)
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow bodies", daemon=True)

    def _open(self) -> socket.socket | None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((self.sources[self.opened % len(self.sources)], 0))
        s.settimeout(5)
        try:
            s.connect(self.address)
            s.sendall(_head(*self.address, self.chunked) + self._byte())
        except OSError:
            s.close()
            return None
        s.setblocking(False)
        self.opened += 1
        return s

    def _byte(self) -> bytes:
        return b"1\r\n\xff\r\n" if self.chunked else b"\xff"

    def start(self, settle_s: float = 0.0) -> SlowBodies:
        """Open the connections, then trickle from a thread; ``settle_s``: wait that long after opening."""
        self._socks = [s for s in (self._open() for _ in range(self.n)) if s is not None]
        self._thread.start()
        time.sleep(settle_s)
        return self

    def _alive(self, s: socket.socket) -> bool:
        """Reads what the server sent; False once it closed the connection."""
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if data.startswith(b"HTTP/1.1 "):
            self.answers[int(data[9:12])] += 1
        return bool(data)  # b"": closed

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            kept = []
            for s in self._socks:
                alive = self._alive(s)
                if alive:
                    try:
                        s.send(self._byte())
                    except OSError:
                        alive = False
                if alive:
                    kept.append(s)
                    continue
                s.close()
                self.closed_by_server += 1
                if not self._stop.is_set() and (fresh := self._open()) is not None:
                    kept.append(fresh)
            self._socks = kept

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for s in self._socks:
            s.close()
