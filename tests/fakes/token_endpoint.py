"""A fake OAuth token endpoint on 127.0.0.1, and a token URI nothing listens on.

The real ``google.auth`` credentials post their refresh to the ``token_uri``
they are given; pointed here, a test logs in without leaving the machine.
The endpoint answers every request with an access token, or, when told to
refuse, with the 400 ``invalid_grant`` error Google gives for a revoked
refresh token (its description echoing the request, to show that messages
mask what a server sends back).
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCESS_TOKEN = "ya29.fake-access-token"


@dataclass
class TokenEndpoint:
    """What the endpoint received, and whether it refuses."""

    url: str
    refuse: bool = False
    requests: list[dict[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        state: TokenEndpoint = self.server.state  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        state.requests.append(form)
        status = 400 if state.refuse else 200
        body: dict[str, object] = (
            {
                "error": "invalid_grant",
                "error_description": f"Token has been expired or revoked: {form}",
            }
            if state.refuse
            else {
                "access_token": ACCESS_TOKEN,
                "expires_in": 3600,
                "token_type": "Bearer",
            }
        )
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@contextmanager
def token_endpoint(*, refuse: bool = False) -> Iterator[TokenEndpoint]:
    """Serve a token endpoint on a free loopback port for the block's duration."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = TokenEndpoint(f"http://127.0.0.1:{server.server_port}/token", refuse)
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_token_uri() -> str:
    """A loopback token URI whose port was free a moment ago: connection refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/token"
