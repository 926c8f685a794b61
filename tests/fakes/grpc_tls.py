"""TLS on loopback for the fake gRPC servers the tests start.

The official clients always open TLS channels, so a fake must serve TLS with a
certificate the test process trusts. ``make_loopback_identity`` writes a
self-signed certificate valid for ``127.0.0.1`` and ``localhost``; the process
trusts it once ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` points at its file, which
must happen before the first TLS channel opens (gRPC caches its roots).
``start_tls_server`` serves any set of generic handlers with that identity.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class TlsIdentity:
    """A private key and its self-signed certificate, the latter also on disk."""

    cert_pem: bytes
    key_pem: bytes
    cert_path: Path


def make_loopback_identity(directory: Path) -> TlsIdentity:
    """Create a one-day self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    alt_names = x509.SubjectAlternativeName(
        [
            x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
            x509.DNSName("localhost"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(alt_names, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )

    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_path = directory / "loopback-cert.pem"
    cert_path.write_bytes(cert_pem)
    return TlsIdentity(cert_pem=cert_pem, key_pem=key_pem, cert_path=cert_path)


@dataclass
class LoopbackServer:
    """A running gRPC server bound to 127.0.0.1 on a port the OS picked."""

    server: grpc.Server
    port: int

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        self.server.stop(grace=None).wait()


def start_tls_server(
    handlers: Sequence[grpc.GenericRpcHandler],
    identity: TlsIdentity,
    *,
    max_workers: int = 4,
) -> LoopbackServer:
    """Serve ``handlers`` over TLS on 127.0.0.1 and return once listening."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        handlers=tuple(handlers),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    credentials = grpc.ssl_server_credentials([(identity.key_pem, identity.cert_pem)])
    port = server.add_secure_port(f"{LOOPBACK}:0", credentials)
    server.start()
    return LoopbackServer(server=server, port=port)
