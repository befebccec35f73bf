"""HTTP/1.1 on one connection: h11's state machine over an asyncio stream.

A :class:`Connection` carries one request at a time. :meth:`Connection.send` writes a
bodiless request and returns the :class:`Response` once its status line and headers
have arrived; the body is then read as it arrives (:meth:`Response.chunks`). When the
answer was read to its end and neither side said ``Connection: close``,
:meth:`Connection.finish` readies the connection for the next request (keep-alive);
otherwise the connection must be closed.

Errors are what the layers below raise, unmapped: :class:`OSError` (``ssl.SSLError``
included), :class:`EOFError` and :class:`h11.ProtocolError`; timeouts are the
caller's (every exchange runs under its deadline), so nothing here waits on a clock
but :meth:`Stream.aclose`. :mod:`watchtower.fetch` maps them to
:class:`~watchtower.errors.FetchError` in one table.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import h11

#: Bytes asked of the socket per read.
READ_SIZE = 64 * 1024
#: The longest status line and header block accepted (h11's incomplete-event cap).
MAX_HEADER_BYTES = 100 * 1024
#: Seconds a closing connection may take (a TLS close_notify exchange).
CLOSE_TIMEOUT = 1.0
_PORTS = {"http": 80, "https": 443}
#: A URL whose every part goes on the wire as written (ASCII host, nothing to escape).
_PLAIN_URL = re.compile(
    r"(?P<scheme>(?-i:https?))://(?P<host>[a-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<path>/[a-z0-9\-._~!$&'()*+,;=:@/%]*)?(?P<query>\?[a-z0-9\-._~!$&'()*+,;=:@/?%]*)?"
    r"(?:#.*)?",
    re.IGNORECASE | re.DOTALL,
)
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a connection goes: ``scheme`` ``http`` or ``https``, an ASCII host."""

    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Request:
    """A bodiless request: ``target`` is the path and query, ``headers`` include Host."""

    origin: Origin
    target: bytes
    headers: Sequence[tuple[bytes, bytes]]
    method: bytes = b"GET"


def request_parts(url: str) -> tuple[Origin, bytes, bytes]:
    """The origin, request target (path and query) and ``Host`` value of an http(s)
    ``url``: what ``httpx.URL`` makes of it (IDNA host, escaped path, dot segments
    removed, default port dropped), read directly from a plain URL, the usual kind.
    Raises ``httpx.InvalidURL`` (``ValueError``)."""
    plain = _PLAIN_URL.fullmatch(url)
    if plain is None or _DOT_SEGMENT.search(plain["path"] or "") or int(plain["port"] or 0) > 65535:
        import httpx  # the rare URL that needs escaping or IDNA

        parsed = httpx.URL(url)
        scheme, host = parsed.scheme, parsed.raw_host.decode("ascii")
        port = _PORTS[scheme] if parsed.port is None else parsed.port
        return Origin(scheme, host, port), parsed.raw_path, parsed.netloc
    scheme, host = plain["scheme"].lower(), plain["host"].lower()
    port = int(plain["port"]) if plain["port"] else _PORTS[scheme]
    netloc = host if port == _PORTS[scheme] else f"{host}:{port}"
    target = (plain["path"] or "/") + (plain["query"] or "")
    return Origin(scheme, host, port), target.encode("ascii"), netloc.encode("ascii")


def decode_headers(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names (lower case) → values, a repeated header's values joined by ``", "``;
    all values decoded as ASCII, else UTF-8, else Latin-1 (as ``httpx.Headers`` does)."""
    values = [value for _, value in raw]
    encoding = "iso-8859-1"
    for candidate in ("ascii", "utf-8"):
        try:
            for value in values:
                value.decode(candidate)
        except UnicodeDecodeError:
            continue
        encoding = candidate
        break
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode(encoding)
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


class Stream:
    """One TCP (or TLS) connection's bytes, on asyncio's own streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, ip: str, port: int) -> Stream:
        """A TCP connection to ``ip``:``port`` (TCP_NODELAY, as asyncio sets it)."""
        reader, writer = await asyncio.open_connection(ip, port)
        return cls(reader, writer)

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """Upgrade to TLS (ALPN ``http/1.1``); closes the connection if that fails."""
        try:
            context.set_alpn_protocols(["http/1.1"])
            await self._writer.start_tls(context, server_hostname=server_hostname)
        except BaseException:
            self.abort()
            raise

    async def read(self) -> bytes:
        return await self._reader.read(READ_SIZE)

    async def write(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise ConnectionResetError("connection closed")
        self._writer.write(data)
        await self._writer.drain()

    def readable(self) -> bool:
        """True when the stream has data or EOF waiting (an idle one is then unusable)."""
        buffered = bool(getattr(self._reader, "_buffer", b""))
        return self._writer.is_closing() or self._reader.at_eof() or buffered

    def abort(self) -> None:
        """Close at once, without a goodbye."""
        self._writer.transport.abort()

    async def aclose(self) -> None:
        """Close, waiting (at most :data:`CLOSE_TIMEOUT`) for TLS to say goodbye; a
        connection that does not close in time is aborted."""
        self._writer.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._writer.wait_closed()
        except Exception:  # closing: there is nothing left to report
            self.abort()


class Response:
    """A response's status and headers; its body is read from the connection."""

    __slots__ = ("_connection", "headers", "status")

    def __init__(
        self, connection: Connection, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self._connection = connection
        self.status = status
        self.headers = headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, as it arrives (decoded from chunked transfer coding, not from
        ``Content-Encoding``)."""
        while (chunk := await self._connection.read_chunk()) is not None:
            yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])


class Connection:
    """One HTTP/1.1 connection to ``origin``; see the module's docstring."""

    def __init__(self, origin: Origin, stream: Stream, *, keepalive_expiry: float) -> None:
        self.origin = origin
        self._stream = stream
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._keepalive_expiry = keepalive_expiry
        self._expire_at = time.monotonic() + keepalive_expiry

    def reusable(self, now: float) -> bool:
        """True when idle, not expired and not closed (nor sent anything) by the server."""
        return (
            self._h11.our_state is h11.IDLE
            and now < self._expire_at
            and not self._stream.readable()
        )

    async def send(self, request: Request) -> Response:
        """Send ``request``; its response, once the status line and headers are in
        (informational 1xx answers are skipped)."""
        data = self._h11.send(
            h11.Request(method=request.method, target=request.target, headers=list(request.headers))
        )
        end = self._h11.send(h11.EndOfMessage())
        await self._stream.write((data or b"") + (end or b""))
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Response):
                return Response(self, event.status_code, list(event.headers.raw_items()))

    async def read_chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                return bytes(event.data)
            if isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                return None

    def finish(self) -> bool:
        """After a response: True when the connection can carry the next request."""
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
            self._expire_at = time.monotonic() + self._keepalive_expiry
            return True
        return False

    def abort(self) -> None:
        self._stream.abort()

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def _next_event(self) -> Any:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self._stream.read()
            if not data and self._h11.their_state is h11.SEND_RESPONSE:
                raise h11.RemoteProtocolError("Server disconnected without sending a response.")
            self._h11.receive_data(data)
