"""The network path every fetch takes: resolve, check the address policy, then connect.

:class:`GuardedConnector` resolves a host name itself, checks every resolved address
against the :class:`AddressPolicy` and connects to the checked IP (TLS SNI,
certificate checks and ``Host`` still use the name), so neither a redirect nor DNS
rebinding reaches an address the policy refuses. :class:`GuardedTransport` sends
HTTP/1.1 requests (:mod:`watchtower.http11`) on its connections and keeps them alive
by origin (no environment proxies, no retries, one verifying TLS context per process).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import os
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from watchtower.errors import (
    AddressRefused,
    FetchError,
)
from watchtower.http11 import Connection, Origin, Request, Response, Stream
from watchtower.netpolicy import AddressPolicy


def one_line(text: object, limit: int = 120) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


class GuardedConnector:
    """Opens connections: resolves the host, checks every address, connects to the IP.

    Every address the host name resolves to is checked against ``policy``; refused
    ones are skipped, and if none is left :class:`AddressRefused` is raised. The TCP
    connection is made to the checked IP itself, so a second DNS answer (rebinding)
    is never used; TLS (SNI and the certificate check) still uses the host name.
    """

    def __init__(self, policy: AddressPolicy, ssl_context: ssl.SSLContext) -> None:
        self._policy = policy
        self._ssl_context = ssl_context

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"cannot resolve host {one_line(host, 60)}") from exc
        addresses: list[str] = []
        for info in infos:
            ip = str(info[4][0])
            if ip not in addresses:
                addresses.append(ip)
        return addresses

    async def connect(self, origin: Origin) -> Stream:
        """A stream to ``origin`` (TLS for ``https``), on the first allowed address that
        answers; raises :class:`AddressRefused`, :class:`FetchError` or the last
        :class:`OSError`."""
        host = origin.host.strip("[]")
        addresses = await self._resolve(host, origin.port)
        allowed = [ip for ip in addresses if self._policy.refusal(ip, origin.port) is None]
        if not allowed:
            reason = self._policy.refusal(addresses[0], origin.port) if addresses else None
            raise AddressRefused(reason or f"no address for host {one_line(host, 60)}")
        last: OSError | None = None
        for ip in allowed:
            try:
                stream = await Stream.connect(ip, origin.port)
                break
            except OSError as exc:
                last = exc
        else:
            assert last is not None
            raise last
        if origin.scheme == "https":
            await stream.start_tls(self._ssl_context, server_hostname=host)
        return stream


class LazyVerifyingContext(ssl.SSLContext):
    """The verifying TLS context httpx makes by default (``verify=True``), whose CA
    certificates are loaded on its first TLS connection rather than when it is made:
    loading the bundle takes 30-200 ms, which a run without HTTPS never needs."""

    _cafile: str | None
    _capath: str | None
    _loaded: bool

    def __new__(cls, cafile: str | None = None, capath: str | None = None) -> LazyVerifyingContext:
        context = super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)  # hostname and chain checked
        context._cafile, context._capath, context._loaded = cafile, capath, False
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog and not sys.flags.ignore_environment:  # as ssl.create_default_context
            context.keylog_filename = keylog
        return context

    def _load(self) -> None:
        if not self._loaded:
            self.load_verify_locations(cafile=self._cafile, capath=self._capath)
            self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._load()
        return super().wrap_bio(*args, **kwargs)


def verifying_context(*, trust_env: bool) -> ssl.SSLContext:
    """What ``httpx.create_ssl_context(verify=True, trust_env=...)`` returns (certifi's
    CAs, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when ``trust_env``), loaded lazily."""
    if trust_env and os.environ.get("SSL_CERT_FILE"):
        return LazyVerifyingContext(cafile=os.environ["SSL_CERT_FILE"])
    if trust_env and os.environ.get("SSL_CERT_DIR"):
        return LazyVerifyingContext(capath=os.environ["SSL_CERT_DIR"])
    import certifi

    return LazyVerifyingContext(cafile=certifi.where())


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The verifying TLS context of every fetch, one per process."""
    return verifying_context(trust_env=False)


class GuardedTransport:
    """HTTP/1.1 through :class:`GuardedConnector`, its connections kept alive by origin.

    No pool queue: the caller bounds how many requests run at once (the Fetcher's
    per-host gates and the pipeline's poll slots), so a request takes an idle
    connection to its origin, or opens one, and gives it back when its answer is
    closed. At most ``max_idle`` connections wait, each for at most
    ``keepalive_expiry`` seconds; one the server closed, or whose answer was not read
    to its end, is closed instead of kept. :meth:`aclose` closes every connection,
    idle or in use. Errors are those of :mod:`watchtower.http11` and the connector's.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = 20,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._connector = GuardedConnector(policy, ssl_context or _ssl_context())
        self._max_idle = max_idle
        self._keepalive_expiry = keepalive_expiry
        self._idle: list[Connection] = []  # oldest first
        self._open: set[Connection] = set()

    @contextlib.asynccontextmanager
    async def stream(self, request: Request) -> AsyncIterator[Response]:
        """Send ``request``; the answer's body can be read (``chunks``) until the
        block ends. A connection whose answer was not read to its end is closed."""
        connection = await self._checkout(request.origin)
        try:
            response = await connection.send(request)
            yield response
        except BaseException:
            self._discard(connection)
            raise
        if connection.finish():
            self._checkin(connection)
        else:
            self._discard(connection)

    async def aclose(self) -> None:
        """Close every connection."""
        connections, self._open, self._idle = self._open, set(), []
        for connection in connections:
            await connection.aclose()

    async def _checkout(self, origin: Origin) -> Connection:
        now = time.monotonic()
        stale = [c for c in self._idle if not c.reusable(now)]
        for connection in stale:  # taken out before any await: other requests run then
            self._discard(connection)
        found = next((c for c in reversed(self._idle) if c.origin == origin), None)
        if found is not None:
            self._idle.remove(found)
            return found
        stream = await self._connector.connect(origin)
        found = Connection(origin, stream, keepalive_expiry=self._keepalive_expiry)
        self._open.add(found)
        return found

    def _checkin(self, connection: Connection) -> None:
        self._idle.append(connection)
        while len(self._idle) > self._max_idle:  # the longest idle goes
            self._discard(self._idle[0])

    def _discard(self, connection: Connection) -> None:
        """Close ``connection`` at once (no TLS goodbye: nothing is waited for)."""
        if connection in self._idle:
            self._idle.remove(connection)
        self._open.discard(connection)
        connection.abort()
