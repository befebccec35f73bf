"""SMTP sending against a real aiosmtpd server: plaintext as configured, STARTTLS required
and verified, clear errors instead of silent fallbacks."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.notify.test_notify_support import SMTPServer, email_config, free_port, smtp_server
from watchtower.errors import DeliveryError, PermanentDeliveryError
from watchtower.notify.digest import render_digest
from watchtower.notify.email import send_message

__all__ = ["smtp_server"]


def _message(port: int, **smtp: object) -> tuple[object, object]:
    cfg = email_config(port)
    if smtp:
        cfg = email_config(port, smtp={"host": "127.0.0.1", "port": port, "timeout": "5s", **smtp})
    return cfg, render_digest([], cfg, "today", "digest_test")


def test_plaintext_send_as_configured(smtp_server: SMTPServer) -> None:
    cfg, msg = _message(smtp_server.port)
    asyncio.run(send_message(cfg.smtp, msg))  # type: ignore[attr-defined,arg-type]
    [got] = smtp_server.messages
    assert got["Message-ID"] == "<digest_test@example.org>"
    assert got.get_content_type() == "multipart/alternative"


def test_refused_connection_is_retryable() -> None:
    cfg, msg = _message(free_port())
    with pytest.raises(DeliveryError) as info:
        asyncio.run(send_message(cfg.smtp, msg))  # type: ignore[attr-defined,arg-type]
    assert not isinstance(info.value, PermanentDeliveryError)
    assert "cannot connect" in info.value.reason


def test_starttls_required_but_not_offered_fails_instead_of_plaintext(
    smtp_server: SMTPServer,
) -> None:
    cfg, msg = _message(smtp_server.port, starttls=True)
    with pytest.raises(DeliveryError, match="STARTTLS") as info:
        asyncio.run(send_message(cfg.smtp, msg))  # type: ignore[attr-defined,arg-type]
    assert "plaintext" in info.value.reason
    assert smtp_server.messages == []


def test_password_never_in_errors() -> None:
    port = free_port()
    cfg, msg = _message(port, username="u", password="hunter2-secret")
    with pytest.raises(DeliveryError) as info:
        asyncio.run(send_message(cfg.smtp, msg))  # type: ignore[attr-defined,arg-type]
    assert "hunter2" not in str(info.value)


class _RefuseRecipients:
    async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]  # noqa: N802
        return "550 5.1.1 no such user"


def test_recipient_refused_for_good_is_permanent() -> None:
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(_RefuseRecipients(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        cfg, msg = _message(port)
        with pytest.raises(PermanentDeliveryError, match="550"):
            asyncio.run(send_message(cfg.smtp, msg))  # type: ignore[attr-defined,arg-type]
    finally:
        controller.stop()


# --- STARTTLS with a real (self-signed) certificate ---------------------------------------


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    crt, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(crt),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return crt, key


@pytest.fixture
def tls_server(cert: tuple[Path, Path]) -> object:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    server = SMTPServer(tls_context=context, require_starttls=True).start()
    yield server
    server.stop()


def test_starttls_with_untrusted_certificate_is_refused(tls_server: SMTPServer) -> None:
    cfg, msg = _message(tls_server.port, starttls=True)
    with pytest.raises(DeliveryError, match="(?i)certificate|TLS"):
        asyncio.run(send_message(cfg.smtp, msg))  # type: ignore[attr-defined,arg-type]
    assert tls_server.messages == []


def test_starttls_with_trusted_certificate_delivers(
    tls_server: SMTPServer, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))  # trusted by create_default_context()
    cfg, msg = _message(tls_server.port, starttls=True)
    asyncio.run(send_message(cfg.smtp, msg))  # type: ignore[attr-defined,arg-type]
    assert len(tls_server.messages) == 1


def test_server_requiring_starttls_refuses_a_plaintext_client(tls_server: SMTPServer) -> None:
    cfg, msg = _message(tls_server.port)
    with pytest.raises(DeliveryError, match="530"):
        asyncio.run(send_message(cfg.smtp, msg))  # type: ignore[attr-defined,arg-type]
