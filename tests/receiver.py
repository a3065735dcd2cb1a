"""A local HTTPS server standing in for a Teams Workflows webhook (settings demand https://).

The certificate is made for 127.0.0.1 here and trusted through REQUESTS_CA_BUNDLE, so the
notifier talks real TLS to it exactly as it would to Teams; nothing leaves the machine.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

PATH = "/workflows/9f8e7d/triggers/manual/paths/invoke"
SIG = "TopSECRETsig0123456789"


def _certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Receiver:
    server: HTTPServer
    url: str

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(request.get_data()) for request, _ in self.server.log]

    def cards(self) -> list[dict[str, Any]]:
        """The Adaptive Cards received, one per message (each message must carry one)."""
        cards = []
        for message in self.messages():
            assert message["type"] == "message"
            (attachment,) = message["attachments"]
            assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
            cards.append(attachment["content"])
        return cards


def card_text(card: Any) -> str:
    """Every text and fact of a card, one per line, to assert on what people read."""
    lines: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                lines.append(str(node.get("text", "")))
            if node.get("type") == "FactSet":
                lines.extend(f"{f['title']}: {f['value']}" for f in node.get("facts", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return "\n".join(lines)


def our_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the app logged (the stand-in server's access log, which shows the URL, excluded)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))


@pytest.fixture(scope="session", name="tls_files")
def tls_files_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(name="receiver")
def receiver_fixture(
    tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Receiver]:
    """A fresh HTTPS receiver per test; the test tells it how to answer."""
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    try:
        yield Receiver(server, server.url_for(PATH) + f"?api-version=1&sig={SIG}")
    finally:
        server.clear()
        if server.is_running():
            server.stop()


@pytest.fixture(name="app_env")
def app_env_fixture(app_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The suite's `app_env`, with promotion on `auc` >= 0.5 and no webhook."""
    app_env.setenv("GOVERNANCE_PROMOTION_METRIC", "auc")
    app_env.setenv("GOVERNANCE_PROMOTION_THRESHOLD", "0.5")
    return app_env
