"""Both sync senders over TLS on 127.0.0.1: they verify certificates alike, and trust what
httpx trusts (certifi, or SSL_CERT_FILE) — every real provider is HTTPS, the emulator is not."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from nexus_llm.errors import ProviderConnectionError
from nexus_llm.sync_transports import SyncSender, make_sync_sender, urllib3_available
from nexus_llm.types import HttpReply
from tests.support import SENDER_SECRET, send_effect, without_proxy_env

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

Backend = Literal["httpx", "urllib3"]
BACKENDS: list[Backend] = ["httpx", "urllib3"]
ANSWER = b'{"candidates": []}'


def _certificate(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signed for IP 127.0.0.1 only: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nexus test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class _Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An HTTPS server on 127.0.0.1 with a certificate only the returned CA file vouches for."""
    ca, cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], ca
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    without_proxy_env(monkeypatch)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def _sender(backend: Backend) -> SyncSender:
    if backend == "urllib3" and not urllib3_available():
        pytest.skip("urllib3 is not installed")
    return make_sync_sender(backend, timeout_s=5.0, transport=None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unknown_authority_is_refused(tls_server: tuple[int, Path], backend: Backend) -> None:
    """A certificate no trusted authority signed is a connection error naming no key."""
    port, _ = tls_server
    sender = _sender(backend)
    try:
        result = sender.send(send_effect(f"https://127.0.0.1:{port}/v1"))
    finally:
        sender.close()
    assert isinstance(result, ProviderConnectionError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(result)
    assert SENDER_SECRET not in str(result)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ssl_cert_file_is_trusted_and_the_name_checked(
    tls_server: tuple[int, Path], backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SSL_CERT_FILE naming the authority, both senders get the answer; the same
    certificate reached as `localhost` (a name it does not carry) is still refused."""
    port, ca = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    sender = _sender(backend)
    try:
        reply = sender.send(send_effect(f"https://127.0.0.1:{port}/v1"))
        wrong_name = sender.send(send_effect(f"https://localhost:{port}/v1"))
    finally:
        sender.close()
    assert isinstance(reply, HttpReply)
    assert (reply.status, reply.body) == (200, ANSWER)
    assert isinstance(wrong_name, ProviderConnectionError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(wrong_name)  # not a refused connection
