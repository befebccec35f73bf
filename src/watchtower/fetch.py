"""Fetching the hostile web: one bounded, polite, conditional GET per call.

:class:`Fetcher` sends HTTP/1.1 requests through one
:class:`~watchtower.transport.GuardedTransport` and enforces, for every request:

* a **total deadline** (``asyncio.timeout``) over connect, redirects and body, not a
  per-read timeout; waiting for a per-host slot does not count;
* a **body cap on the decompressed size**: the raw body is read as it arrives and
  inflated by a bounded ``zlib`` decompressor; only identity, gzip
  and deflate are accepted (``Accept-Encoding: gzip, deflate``), inflated up to the cap;
* **redirects followed here**, at most ``max_redirects`` hops, loops detected, each
  hop's scheme checked (http/https only) and address checked;
* the **address policy** of :mod:`watchtower.netpolicy`, applied by the transport
  at connect time to the resolved addresses, so neither a redirect nor DNS rebinding
  can reach loopback, private, link-local or other non-public addresses. The
  connection goes to the checked IP; TLS SNI, certificate checks and the ``Host``
  header still use the URL's host name. Environment proxies are ignored (they would
  bypass the policy);
* **politeness**: at most ``per_host_connections`` requests in flight per host and at
  least ``per_host_interval`` seconds between request starts to one host;
* **conditional GET** from the caller's ETag / Last-Modified, and a
  ``User-Agent: Watchtower/<version> (+<contact>)``.

Every failure is a :class:`watchtower.errors.FetchError` subclass whose ``reason`` is
a short human sentence (``timeout after 20 s``, ``body over 10 MB``, ``redirect to
private address 10.0.0.5 refused``, ``HTTP 404 Not Found``…).
"""

from __future__ import annotations

import asyncio
import http
import logging
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import h11

from watchtower import __version__
from watchtower.errors import (
    AddressRefused,
    BodyTooLarge,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    RedirectError,
)
from watchtower.http11 import Request, Response, decode_headers, request_parts
from watchtower.models import FetchResult
from watchtower.netpolicy import AddressPolicy, check_scheme
from watchtower.retry_after import parse_retry_after
from watchtower.transport import GuardedTransport, one_line
from watchtower.units import human_seconds, human_size

log = logging.getLogger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/feed+json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
    "application/json;q=0.5, text/html;q=0.3, */*;q=0.1"
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: The errors of a connection (sockets, TLS) or of the peer's HTTP; a TimeoutError (an
#: OSError too) is caught before them, as a timeout.
CONNECTION_ERRORS = (OSError, EOFError, h11.ProtocolError)
MAX_RETRY_AFTER = 7 * 24 * 3600.0


class FetchSettings(Protocol):
    """What :meth:`Fetcher.from_config` reads (``watchtower.config.FetchConfig``)."""

    timeout: timedelta
    max_bytes: int
    allow_private_addresses: bool
    contact: str | None
    max_redirects: int
    per_host_connections: int
    per_host_interval: timedelta


# --------------------------------------------------------------------------- body


class _Inflater:
    """Collects a response body, inflating gzip/deflate with a hard output cap."""

    def __init__(self, coding: str | None, limit: int) -> None:
        self._limit = limit
        self._raw_limit = limit + limit // 50 + 64 * 1024
        self._raw = 0
        self._out = bytearray()
        self._coding = coding
        self._d: Any = None
        self._head = b""
        self._done = False
        if coding in ("gzip", "x-gzip"):
            self._d = zlib.decompressobj(47)

    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge(f"body over {human_size(self._limit)}")

    def _append(self, data: bytes) -> None:
        if len(self._out) + len(data) > self._limit:
            raise self._too_large()
        self._out += data

    def feed(self, data: bytes) -> None:
        self._raw += len(data)
        if self._raw > self._raw_limit:
            raise self._too_large()
        if self._coding is None:
            self._append(data)
            return
        if self._done or not data:
            return
        if self._d is None:  # deflate: zlib-wrapped or raw? Decide from two bytes.
            self._head += data
            if len(self._head) < 2:
                return
            cmf, flg = self._head[0], self._head[1]
            zlib_wrapped = (cmf & 0x0F) == 8 and (cmf * 256 + flg) % 31 == 0
            self._d = zlib.decompressobj(15 if zlib_wrapped else -15)
            data, self._head = self._head, b""
        self._inflate(data)

    def _inflate(self, data: bytes) -> None:
        while data:
            try:
                out = self._d.decompress(data, self._limit - len(self._out) + 1)
            except zlib.error as exc:
                raise FetchError(f"corrupt {self._coding} body") from exc
            self._append(out)
            if self._d.eof:
                tail = self._d.unused_data
                if tail[:2] == b"\x1f\x8b":  # another gzip member follows
                    self._d = zlib.decompressobj(47)
                    data = tail
                    continue
                self._done = True
                return
            data = self._d.unconsumed_tail

    def body(self) -> bytes:
        if self._d is None and self._head:
            raise FetchError(f"corrupt {self._coding} body")
        return bytes(self._out)


def _content_coding(headers: dict[str, str]) -> str | None:
    raw = str(headers.get("content-encoding") or "")
    codings = [c.strip().lower() for c in raw.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return codings[0]
    raise FetchError(f"unsupported content encoding {one_line(raw, 40)}")


# --------------------------------------------------------------------------- politeness


class _HostGate:
    """At most ``connections`` requests in flight, starts ``interval`` seconds apart."""

    def __init__(self, connections: int, interval: float) -> None:
        self._sem = asyncio.Semaphore(max(1, connections))
        self._interval = max(0.0, interval)
        self._next = 0.0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._sem:
            now = asyncio.get_running_loop().time()
            start = max(now, self._next)
            self._next = start + self._interval
            if start > now:
                await asyncio.sleep(start - now)
            yield


@dataclass(frozen=True, slots=True)
class _Redirect:
    location: str


# --------------------------------------------------------------------------- fetcher


class Fetcher:
    """A bounded, polite HTTP client for feeds and pages. Use as an async context manager.

    ``timeout`` is the total seconds per :meth:`fetch` (all hops and the body);
    ``max_bytes`` caps the decompressed body; ``allow_private`` turns the address
    policy off; ``contact`` (a URL or e-mail) goes into the User-Agent.
    ``allowed_endpoints`` lists exact ``(ip, port)`` pairs allowed while the policy is
    on (for tests and single intranet hosts). ``ssl_context`` replaces the default
    verifying TLS context (certifi CAs). One Fetcher serves one event loop.
    """

    def __init__(
        self,
        *,
        timeout: float,
        max_bytes: int,
        allow_private: bool,
        contact: str | None,
        max_redirects: int = 5,
        per_host_connections: int = 2,
        per_host_interval: float = 1.0,
        allowed_endpoints: Iterable[tuple[str, int]] = (),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if timeout <= 0 or max_bytes <= 0 or max_redirects < 0:
            raise ValueError("timeout and max_bytes must be positive, max_redirects ≥ 0")
        self.timeout = float(timeout)
        self.max_bytes = int(max_bytes)
        self.max_redirects = int(max_redirects)
        self.per_host_connections = int(per_host_connections)
        self.per_host_interval = float(per_host_interval)
        self.policy = AddressPolicy.build(
            allow_private=allow_private, allowed_endpoints=allowed_endpoints
        )
        self.user_agent = f"Watchtower/{__version__}"
        if contact:
            clean = "".join(ch for ch in contact if ch.isprintable()).strip()
            if clean:
                self.user_agent += f" (+{clean})"
        self._ssl_context = ssl_context
        self._transport: GuardedTransport | None = None
        self._base_headers = [
            (b"Accept-Encoding", b"gzip, deflate"),
            (b"Connection", b"keep-alive"),
            (b"User-Agent", self.user_agent.encode("utf-8")),
        ]
        self._gates: dict[str, _HostGate] = {}

    @classmethod
    def from_config(cls, cfg: FetchSettings, **overrides: Any) -> Fetcher:
        """A Fetcher from ``watchtower.config.FetchConfig`` (keyword overrides win)."""
        kwargs: dict[str, Any] = {
            "timeout": cfg.timeout.total_seconds(),
            "max_bytes": cfg.max_bytes,
            "allow_private": cfg.allow_private_addresses,
            "contact": cfg.contact,
            "max_redirects": cfg.max_redirects,
            "per_host_connections": cfg.per_host_connections,
            "per_host_interval": cfg.per_host_interval.total_seconds(),
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    async def __aenter__(self) -> Fetcher:
        self._transport = GuardedTransport(self.policy, ssl_context=self._ssl_context)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.aclose()

    def _gate(self, host: str) -> _HostGate:
        gate = self._gates.get(host)
        if gate is None:
            gate = self._gates[host] = _HostGate(self.per_host_connections, self.per_host_interval)
        return gate

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
    ) -> FetchResult:
        """GET ``url`` within every limit; a 200 (any 2xx) with its body, or a 304.

        ``etag`` / ``last_modified`` are the validators stored from the previous poll
        (sent as If-None-Match / If-Modified-Since). Raises only FetchError
        subclasses: FetchTimeout, BodyTooLarge, AddressRefused, RedirectError,
        HTTPStatusError (429/503 carry ``retry_after`` seconds) or FetchError.
        """
        if self._transport is None:
            raise RuntimeError("Fetcher used outside 'async with'")
        headers = [(b"Accept", accept.encode("latin-1")), *self._base_headers]
        if etag:
            headers.append((b"If-None-Match", _header_value(etag)))
        if last_modified:
            headers.append((b"If-Modified-Since", _header_value(last_modified)))
        started = time.monotonic()
        budget = self.timeout
        seen = {url}
        current = url
        for hop in range(self.max_redirects + 1):
            host = self._check_url(current, url, hop)
            async with self._gate(host).slot():
                t0 = time.monotonic()
                try:
                    async with asyncio.timeout(budget):
                        outcome = await self._hop(self._transport, current, headers, url, hop)
                except TimeoutError as exc:
                    raise FetchTimeout(
                        f"timeout after {human_seconds(self.timeout)}", url=url
                    ) from exc
                budget -= time.monotonic() - t0
            if isinstance(outcome, FetchResult):
                return _with_elapsed(outcome, time.monotonic() - started, etag, last_modified)
            nxt = urljoin(current, outcome.location.strip())
            if hop == self.max_redirects:
                break
            if nxt in seen:
                raise RedirectError("redirect loop", url=url)
            seen.add(nxt)
            log.debug("redirect %s -> %s", current, nxt)
            current = nxt
        raise RedirectError(f"too many redirects ({self.max_redirects})", url=url)

    def _check_url(self, current: str, origin: str, hop: int) -> str:
        try:
            parts = urlsplit(current)
            parts.port  # noqa: B018 - validates the port
        except ValueError as exc:
            if hop:
                raise RedirectError("redirect to an invalid URL", url=origin) from exc
            raise FetchError("invalid URL", url=origin) from exc
        check_scheme(parts.scheme, url=origin, redirect=hop > 0)
        if not parts.hostname:
            raise FetchError("URL has no host", url=origin)
        return parts.hostname.lower()

    async def _hop(
        self,
        transport: GuardedTransport,
        url: str,
        headers: list[tuple[bytes, bytes]],
        origin: str,
        hop: int,
    ) -> FetchResult | _Redirect:
        try:
            target, path, host = request_parts(url)
        except ValueError as exc:  # httpx.InvalidURL
            raise FetchError("invalid URL", url=origin) from exc
        request = Request(target, path, [(b"Host", host), *headers])
        try:
            async with transport.stream(request) as answer:
                return await self._answer(answer, decode_headers(answer.headers), url, origin)
        except AddressRefused as exc:
            reason = f"redirect to {exc.reason}" if hop else exc.reason
            raise AddressRefused(reason, url=origin) from exc
        except FetchError as exc:
            exc.url = origin
            raise
        except TimeoutError as exc:
            raise FetchTimeout(f"timeout after {human_seconds(self.timeout)}", url=origin) from exc
        except CONNECTION_ERRORS as exc:
            raise FetchError(
                f"connection failed: {one_line(exc) or type(exc).__name__}", url=origin
            ) from exc

    async def _answer(
        self, response: Response, headers: dict[str, str], url: str, origin: str
    ) -> FetchResult | _Redirect:
        status = response.status
        if status in REDIRECT_STATUSES:
            location = headers.get("location")
            if not location:
                raise RedirectError(f"HTTP {status} redirect without Location", url=origin)
            return _Redirect(location)
        if status == 304:
            # A 304 never has a body (h11 reads none); reading its end lets the pool keep
            # the connection instead of closing it, one TCP handshake saved per source.
            await response.read()
            return FetchResult(
                url=url,
                status=304,
                body=b"",
                headers=headers,
                etag=headers.get("etag"),
                last_modified=headers.get("last-modified"),
            )
        if not 200 <= status < 300:
            raise _status_error(status, headers, origin)
        body = await self._read_body(response, headers, origin)
        headers.pop("content-encoding", None)
        headers["content-length"] = str(len(body))
        return FetchResult(
            url=url,
            status=200,
            body=body,
            headers=headers,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
        )

    async def _read_body(self, response: Response, headers: dict[str, str], origin: str) -> bytes:
        coding = _content_coding(headers)
        length = headers.get("content-length", "")
        if coding is None and length.isdigit() and int(length) > self.max_bytes:
            raise BodyTooLarge(f"body over {human_size(self.max_bytes)}", url=origin)
        inflater = _Inflater(coding, self.max_bytes)
        try:
            async for chunk in response.chunks():
                inflater.feed(chunk)
        except FetchError as exc:
            exc.url = origin
            raise
        except TimeoutError as exc:
            raise FetchTimeout(f"timeout after {human_seconds(self.timeout)}", url=origin) from exc
        except CONNECTION_ERRORS as exc:
            raise FetchError(
                f"connection broken: {one_line(exc) or type(exc).__name__}", url=origin
            ) from exc
        return inflater.body()


def _header_value(text: str) -> bytes:
    """A stored validator as a header value (as it came: Latin-1, else UTF-8)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _status_error(status: int, headers: dict[str, str], origin: str) -> HTTPStatusError:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    retry_after = None
    reason = f"HTTP {status} {phrase}"
    if status in (429, 503):
        retry_after = parse_retry_after(headers.get("retry-after"), cap=MAX_RETRY_AFTER)
        if retry_after is not None:
            reason += f" (retry after {human_seconds(round(retry_after))})"
    return HTTPStatusError(reason, status=status, url=origin, retry_after=retry_after)


def _with_elapsed(
    result: FetchResult, elapsed: float, etag: str | None, last_modified: str | None
) -> FetchResult:
    if result.status == 304:
        etag = result.etag or etag
        last_modified = result.last_modified or last_modified
    else:
        etag, last_modified = result.etag, result.last_modified
    return FetchResult(
        url=result.url,
        status=result.status,
        body=result.body,
        headers=result.headers,
        etag=etag,
        last_modified=last_modified,
        elapsed=elapsed,
    )
