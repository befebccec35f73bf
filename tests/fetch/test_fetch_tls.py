"""HTTPS through the guarded transport: we connect to the checked IP, yet TLS still
verifies the URL's host name (SNI and certificate), and the Host header is the name."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from watchtower.errors import AddressRefused, FetchError
from watchtower.fetch import Fetcher

BODY = b'<rss version="2.0"><channel><item><title>tls</title></item></channel></rss>'


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(crt), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


@pytest.fixture(scope="module")
def tls_server(cert: tuple[Path, Path]) -> Iterator[tuple[int, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []  # (Host header, SNI)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            sni = getattr(self.connection, "watchtower_sni", None)
            seen.append((self.headers.get("Host", ""), sni))
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)

    def remember_sni(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sock.watchtower_sni = name  # type: ignore[union-attr]

    ctx.sni_callback = remember_sni  # type: ignore[assignment]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def fetch(url: str, port: int, ctx: ssl.SSLContext, *, allow: bool = True) -> bytes:
    async def go() -> bytes:
        async with Fetcher(
            timeout=5, max_bytes=100_000, allow_private=False, contact=None,
            allowed_endpoints=[("127.0.0.1", port)] if allow else [], ssl_context=ctx,
        ) as f:  # fmt: skip
            return (await f.fetch(url)).body

    return asyncio.run(go())


def test_https_by_name_verifies_the_name_while_connecting_to_the_checked_ip(
    tls_server: tuple[int, list[tuple[str, str | None]]], cert: tuple[Path, Path]
) -> None:
    port, seen = tls_server
    assert fetch(f"https://localhost:{port}/feed", port, client_context(cert[0])) == BODY
    host, sni = seen[-1]
    assert host == f"localhost:{port}" and sni == "localhost"


def test_https_certificate_for_another_name_is_rejected(
    tls_server: tuple[int, list[tuple[str, str | None]]], cert: tuple[Path, Path]
) -> None:
    port, _ = tls_server
    with pytest.raises(FetchError, match="connection failed") as err:
        fetch(
            f"https://127.0.0.1:{port}/feed", port, client_context(cert[0])
        )  # cert says localhost
    assert "CERTIFICATE_VERIFY_FAILED" in err.value.reason or "certificate" in err.value.reason
    with pytest.raises(FetchError, match="connection failed"):
        fetch(f"https://localhost:{port}/feed", port, ssl.create_default_context())  # unknown CA


def test_https_to_loopback_refused_when_not_allowed(
    tls_server: tuple[int, list[tuple[str, str | None]]], cert: tuple[Path, Path]
) -> None:
    port, seen = tls_server
    before = len(seen)
    with pytest.raises(AddressRefused, match="loopback address 127.0.0.1 refused"):
        fetch(f"https://localhost:{port}/feed", port, client_context(cert[0]), allow=False)
    assert len(seen) == before


def test_the_default_context_loads_its_cas_on_first_use_and_verifies(
    tls_server: tuple[int, list[tuple[str, str | None]]],
    cert: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from watchtower.transport import LazyVerifyingContext, verifying_context

    port, _ = tls_server
    lazy = verifying_context(trust_env=False)
    assert isinstance(lazy, LazyVerifyingContext)
    assert lazy.cert_store_stats()["x509_ca"] == 0, "nothing loaded before a TLS connection"
    with pytest.raises(FetchError, match="connection failed"):  # certifi does not know it
        fetch(f"https://localhost:{port}/feed", port, lazy)
    assert lazy.cert_store_stats()["x509_ca"] > 0
    assert lazy.verify_mode == ssl.CERT_REQUIRED and lazy.check_hostname

    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    trusting = verifying_context(trust_env=True)
    assert fetch(f"https://localhost:{port}/feed", port, trusting) == BODY
    assert verifying_context(trust_env=False).cert_store_stats()["x509_ca"] == 0
