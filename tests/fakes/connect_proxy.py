"""A fake http proxy on 127.0.0.1 that tunnels CONNECT requests to 127.0.0.1.

gRPC reaches an API through an http proxy by asking it to ``CONNECT
host:port`` and then speaking TLS through the tunnel; this proxy records each
tunnel's target and ``Proxy-Authorization`` header, and refuses any target off
this machine.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class ConnectProxy:
    """Where the proxy listens and the tunnels it opened."""

    host_port: str
    tunnels: list[str] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        state: ConnectProxy = self.server.state  # type: ignore[attr-defined]
        method, target, _ = self.rfile.readline().decode("latin-1").split(" ", 2)
        headers = {}
        while line := self.rfile.readline().decode("latin-1").strip():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or host != "127.0.0.1":
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            return

        state.tunnels.append(target)
        state.authorizations.append(headers.get("proxy-authorization", ""))
        with socket.create_connection((host, int(port))) as upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            back = threading.Thread(
                target=_pipe, args=(upstream.recv, self.connection), daemon=True
            )
            back.start()
            _pipe(self.rfile.read1, upstream)
            back.join()


def _pipe(read: Callable[[int], bytes], sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := read(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextmanager
def connect_proxy() -> Iterator[ConnectProxy]:
    """Serve the proxy on a free loopback port for the block's duration."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    state = ConnectProxy(f"127.0.0.1:{server.server_address[1]}")
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
