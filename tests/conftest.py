"""Shared test set-up: a loopback TLS identity trusted by every gRPC channel.

gRPC reads its trusted roots once, when the first TLS channel of the process
opens, so the certificate is made and ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` set
here, before any test module imports a client.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.grpc_tls import TlsIdentity, make_loopback_identity

_TLS_DIR = Path(tempfile.mkdtemp(prefix="valuebid-tls-"))
_TLS_IDENTITY = make_loopback_identity(_TLS_DIR)
os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(_TLS_IDENTITY.cert_path)

pytest_plugins = ["tests.support.postgres"]


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_TLS_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def tls_identity() -> Iterator[TlsIdentity]:
    yield _TLS_IDENTITY
