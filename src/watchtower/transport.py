"""The network path every fetch takes: resolve, check the address policy, then connect.

:class:`GuardedBackend` is an httpcore network backend that resolves a host name
itself, checks every resolved address against the :class:`AddressPolicy` and connects
to the checked IP (TLS SNI, certificate checks and ``Host`` still use the name), so
neither a redirect nor DNS rebinding reaches an address the policy refuses.
:class:`GuardedTransport` sends HTTP/1.1 requests through it and keeps their
connections alive by origin (no environment proxies, no retries, one verifying TLS
context per process).
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
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpcore

from watchtower.errors import (
    AddressRefused,
    FetchError,
)
from watchtower.netpolicy import AddressPolicy


def one_line(text: object, limit: int = 120) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, checks, then connects to the IP.

    Every address the host name resolves to is checked against ``policy``; refused
    ones are skipped, and if none is left :class:`AddressRefused` is raised. The TCP
    connection is made to the checked IP itself, so a second DNS answer (rebinding)
    is never used.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy

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

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        allowed = [ip for ip in addresses if self._policy.refusal(ip, port) is None]
        if not allowed:
            reason = self._policy.refusal(addresses[0], port) if addresses else None
            raise AddressRefused(reason or f"no address for host {one_line(host, 60)}")
        last: Exception | None = None
        for ip in allowed:
            try:
                return await AsyncioStream.connect(
                    ip, port, timeout=timeout, local_address=local_address, options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("unix sockets refused")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@contextlib.contextmanager
def _mapped(timeout_error: type[Exception], error: type[Exception]) -> Iterator[None]:
    """Raise a timeout as ``timeout_error`` and a socket or TLS error as ``error``."""
    try:
        yield
    except TimeoutError as exc:
        raise timeout_error(str(exc) or "timed out") from exc
    except (OSError, ssl.SSLError, EOFError) as exc:
        raise error(str(exc) or type(exc).__name__) from exc


#: Seconds a closing connection may take (a TLS close_notify exchange).
CLOSE_TIMEOUT = 1.0


class AsyncioStream(httpcore.AsyncNetworkStream):
    """An httpcore network stream on asyncio's own streams.

    What httpcore's AnyIO backend does, without its per-call costs: AnyIO builds its
    socket attributes (a ``getpeername`` system call) each time the connection pool
    asks whether an idle connection is still usable, which it does for every idle
    connection on every request. Here that answer is read from the stream's state.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(
        cls,
        ip: str,
        port: int,
        *,
        timeout: float | None,
        local_address: str | None,
        options: Iterable[Any] | None,
    ) -> AsyncioStream:
        """A TCP connection to ``ip``:``port`` (TCP_NODELAY, as asyncio sets it)."""
        local = (local_address, 0) if local_address else None
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(ip, port, local_addr=local)
        sock = writer.get_extra_info("socket")
        for option in options or ():
            sock.setsockopt(*option)
        return cls(reader, writer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _mapped(httpcore.ReadTimeout, httpcore.ReadError):
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with _mapped(httpcore.WriteTimeout, httpcore.WriteError):
            if self._writer.is_closing():
                raise OSError("connection closed")
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()

    async def aclose(self) -> None:
        """Close, waiting (at most :data:`CLOSE_TIMEOUT`) for TLS to say goodbye; a
        connection that does not close in time is aborted."""
        self._writer.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._writer.wait_closed()
        except Exception:  # closing: there is nothing left to report
            self._writer.transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
                async with asyncio.timeout(timeout):
                    await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except BaseException:
            await self.aclose()
            raise
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle connection with data or EOF is unusable
            buffered = bool(getattr(self._reader, "_buffer", b""))
            return self._writer.is_closing() or self._reader.at_eof() or buffered
        names = {"client_addr": "sockname", "server_addr": "peername"}
        return self._writer.get_extra_info(names.get(info, info))


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
    """HTTP/1.1 through :class:`GuardedBackend`, its connections kept alive by origin.

    No pool queue: the caller bounds how many requests run at once (the Fetcher's
    per-host gates and the pipeline's poll slots), so a request takes an idle
    connection to its origin, or opens one, and gives it back when its answer is
    closed. At most ``max_idle`` connections wait, each for at most
    ``keepalive_expiry`` seconds; one the server closed, or whose answer was not read
    to its end, is closed instead of kept. :meth:`aclose` closes every connection,
    idle or in use.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = 20,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._backend = GuardedBackend(policy)
        self._ssl_context = ssl_context or _ssl_context()
        self._max_idle = max_idle
        self._keepalive_expiry = keepalive_expiry
        self._idle: list[httpcore.AsyncHTTPConnection] = []  # oldest first
        self._open: set[httpcore.AsyncHTTPConnection] = set()

    @contextlib.asynccontextmanager
    async def stream(self, request: httpcore.Request) -> AsyncIterator[httpcore.Response]:
        """Send ``request``; the answer's body is a stream (read it with
        ``aiter_stream``) until the block ends. Raises httpcore's errors."""
        connection = await self._checkout(request.url.origin)
        try:
            response = await connection.handle_async_request(request)
        except BaseException:
            await self._discard(connection)
            raise
        try:
            yield response
        finally:
            try:
                await response.aclose()
            except BaseException:
                await self._discard(connection)
                raise
            await self._checkin(connection)

    async def aclose(self) -> None:
        """Close every connection."""
        connections, self._open, self._idle = self._open, set(), []
        for connection in connections:
            await _close(connection)

    async def _checkout(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        stale = [c for c in self._idle if c.has_expired() or not c.is_available()]
        for connection in stale:  # taken out before any await: other requests run then
            self._idle.remove(connection)
            self._open.discard(connection)
        found = next((c for c in reversed(self._idle) if c.can_handle_request(origin)), None)
        if found is not None:
            self._idle.remove(found)
        else:
            found = httpcore.AsyncHTTPConnection(
                origin,
                ssl_context=self._ssl_context,
                keepalive_expiry=self._keepalive_expiry,
                network_backend=self._backend,
            )
            self._open.add(found)
        for connection in stale:
            await _close(connection)
        return found

    async def _checkin(self, connection: httpcore.AsyncHTTPConnection) -> None:
        if not connection.is_idle() or connection.is_closed():
            await self._discard(connection)
            return
        self._idle.append(connection)
        while len(self._idle) > self._max_idle:  # the longest idle goes
            await self._discard(self._idle[0])

    async def _discard(self, connection: httpcore.AsyncHTTPConnection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)
        self._open.discard(connection)
        await _close(connection)


async def _close(connection: httpcore.AsyncHTTPConnection) -> None:
    """Close ``connection``; a failure to close has nothing left to report."""
    with contextlib.suppress(Exception):
        await connection.aclose()
