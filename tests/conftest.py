"""Shared test set-up: this machine only, and a loopback TLS identity.

Tests reach nothing but 127.0.0.1: a lookup of any other host name fails at
once, so a client left pointing at a public endpoint (an OAuth token endpoint,
say) fails its test instead of reaching out.

gRPC reads its trusted roots once, when the first TLS channel of the process
opens, so the certificate is made and ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` set
here, before any test module imports a client.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.grpc_tls import TlsIdentity, make_loopback_identity

_LOCAL_NAMES = frozenset({"", "localhost", "::1", "0.0.0.0", "::"})
_resolve = socket.getaddrinfo


def _resolve_local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name not in _LOCAL_NAMES and not name.startswith("127."):
        raise socket.gaierror(
            socket.EAI_NONAME, f"tests reach only this machine, not {name}"
        )
    return _resolve(host, *args, **kwargs)


socket.getaddrinfo = _resolve_local_only

_TLS_DIR = Path(tempfile.mkdtemp(prefix="valuebid-tls-"))
_TLS_IDENTITY = make_loopback_identity(_TLS_DIR)
os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(_TLS_IDENTITY.cert_path)

pytest_plugins = ["tests.support.postgres"]


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_TLS_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def tls_identity() -> Iterator[TlsIdentity]:
    yield _TLS_IDENTITY
