"""Fetcher against a real loopback server: headers, conditional GET, limits, redirects."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support import LoopbackHTTP, Request, Response, feed_with_etag
from watchtower import __version__
from watchtower.errors import (
    AddressRefused,
    BodyTooLarge,
    FetchError,
    HTTPStatusError,
    RedirectError,
)
from watchtower.fetch import MAX_RETRY_AFTER, Fetcher, human_size
from watchtower.models import FetchResult
from watchtower.retry_after import parse_retry_after


@pytest.fixture(scope="module")
def srv() -> Iterator[LoopbackHTTP]:
    """One loopback server for this module (each test uses its own paths)."""
    with LoopbackHTTP() as server:
        yield server


RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def fetch(url: str, **kw: Any) -> FetchResult:
    opts: dict[str, Any] = {
        "timeout": 5.0,
        "max_bytes": 1_000_000,
        "allow_private": True,
        "contact": "https://example.org/about",
        "per_host_interval": 0.0,
    }
    call = {k: kw.pop(k) for k in ("etag", "last_modified", "accept") if k in kw}
    opts.update(kw)

    async def go() -> FetchResult:
        async with Fetcher(**opts) as f:
            return await f.fetch(url, **call)

    return asyncio.run(go())


def test_plain_fetch_sends_identity_headers_and_returns_lowercase_headers(
    srv: LoopbackHTTP,
) -> None:
    srv.routes["/feed"] = Response(
        200, {"Content-Type": "application/rss+xml", "ETag": '"v1"', "X-Thing": "a"}, RSS
    )
    result = fetch(srv.url("/feed"))
    assert result.status == 200 and result.body == RSS
    assert result.url == srv.url("/feed")
    assert result.headers["content-type"] == "application/rss+xml"
    assert result.headers["x-thing"] == "a"
    assert result.etag == '"v1"'
    assert result.elapsed > 0
    sent = srv.requests_to("/feed")[0].headers
    assert sent["user-agent"] == f"Watchtower/{__version__} (+https://example.org/about)"
    assert sent["accept-encoding"] == "gzip, deflate"
    assert "application/rss+xml" in sent["accept"]


def test_conditional_get_gives_304_and_keeps_validators(srv: LoopbackHTTP) -> None:
    srv.routes["/cond"] = feed_with_etag(RSS, '"abc"')
    first = fetch(srv.url("/cond"))
    assert first.status == 200 and first.etag == '"abc"'
    second = fetch(srv.url("/cond"), etag='"abc"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT")
    assert second.status == 304 and second.not_modified and second.body == b""
    assert second.etag == '"abc"'
    assert second.last_modified == "Mon, 01 Jan 2024 00:00:00 GMT"
    sent = srv.requests_to("/cond")[1].headers
    assert sent["if-none-match"] == '"abc"'
    assert sent["if-modified-since"] == "Mon, 01 Jan 2024 00:00:00 GMT"


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send
    ],
)
def test_compressed_bodies_are_inflated(srv: LoopbackHTTP, coding: str, encode: Any) -> None:
    srv.routes["/z"] = Response(200, {"Content-Encoding": coding}, encode(RSS * 50))
    result = fetch(srv.url("/z"))
    assert result.body == RSS * 50
    assert "content-encoding" not in result.headers


def test_concatenated_gzip_members_are_all_read(srv: LoopbackHTTP) -> None:
    srv.routes["/z"] = Response(
        200, {"Content-Encoding": "gzip"}, gzip.compress(b"abc") + gzip.compress(b"def")
    )
    assert fetch(srv.url("/z")).body == b"abcdef"


def test_corrupt_gzip_is_a_clear_error(srv: LoopbackHTTP) -> None:
    srv.routes["/z"] = Response(200, {"Content-Encoding": "gzip"}, b"\x1f\x8bnot gzip at all")
    with pytest.raises(FetchError, match="corrupt gzip body"):
        fetch(srv.url("/z"))


def test_unsupported_encoding_refused(srv: LoopbackHTTP) -> None:
    srv.routes["/z"] = Response(200, {"Content-Encoding": "zstd"}, b"xx")
    with pytest.raises(FetchError) as err:
        fetch(srv.url("/z"))
    assert err.value.reason == "unsupported content encoding zstd"


def test_declared_length_over_cap_refused_before_reading(srv: LoopbackHTTP) -> None:
    srv.routes["/big"] = Response(200, {"Content-Length": str(50_000_000)}, b"x" * 10)
    with pytest.raises(BodyTooLarge) as err:
        fetch(srv.url("/big"), max_bytes=10 * 1024 * 1024)
    assert err.value.reason == "body over 10 MB"


def test_body_exactly_at_cap_is_accepted_and_one_more_byte_refused(
    srv: LoopbackHTTP,
) -> None:
    srv.routes["/ok"] = Response(200, {}, b"x" * 1000)
    srv.routes["/no"] = Response(200, {}, b"x" * 1001)
    assert len(fetch(srv.url("/ok"), max_bytes=1000).body) == 1000
    with pytest.raises(BodyTooLarge, match="body over 1 kB|body over 1000 bytes"):
        fetch(srv.url("/no"), max_bytes=1000)


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error"), (410, "HTTP 410 Gone")],
)
def test_error_status_has_short_reason(srv: LoopbackHTTP, status: int, reason: str) -> None:
    srv.routes["/e"] = Response(status, {}, b"<html>nope</html>")
    with pytest.raises(HTTPStatusError) as err:
        fetch(srv.url("/e"))
    assert err.value.reason == reason and err.value.status == status
    assert err.value.retry_after is None


def test_429_and_503_carry_retry_after(srv: LoopbackHTTP) -> None:
    srv.routes["/slow-down"] = Response(429, {"Retry-After": "120"}, b"")
    srv.routes["/maint"] = Response(503, {"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"}, b"")
    with pytest.raises(HTTPStatusError) as err:
        fetch(srv.url("/slow-down"))
    assert err.value.status == 429 and err.value.retry_after == 120.0
    assert err.value.reason == "HTTP 429 Too Many Requests (retry after 120 s)"
    with pytest.raises(HTTPStatusError) as err:
        fetch(srv.url("/maint"))
    assert err.value.status == 503 and err.value.retry_after is not None
    assert err.value.retry_after == 7 * 24 * 3600  # capped at a week


def test_parse_retry_after_forms() -> None:
    cap = MAX_RETRY_AFTER
    assert parse_retry_after("5", cap=cap) == 5.0
    assert parse_retry_after(None, cap=cap) is None
    assert parse_retry_after("soon", cap=cap) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", cap=cap) == 0.0


def test_one_retry_after_rule_for_feeds_and_webhooks() -> None:
    """The two parsers disagreed: a date without a zone was None for webhooks and UTC
    for feeds; a year-9999 date raised in one. Now one rule, with the caller's cap."""
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    assert parse_retry_after("Fri, 15 Jan 2027 08:10:00 -0000", cap=3600, now=now) == 600.0
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", cap=3600, now=now) == 3600.0
    assert parse_retry_after("٣", cap=3600, now=now) is None  # non-ASCII digits
    assert parse_retry_after("-5", cap=3600, now=now) is None
    assert parse_retry_after("99999999", cap=3600, now=now) == 3600.0


def test_relative_redirect_is_followed(srv: LoopbackHTTP) -> None:
    srv.routes["/old"] = Response(301, {"Location": "/new?x=1"}, b"")
    srv.routes["/new"] = Response(200, {"Content-Type": "application/rss+xml"}, RSS)
    result = fetch(srv.url("/old"))
    assert result.body == RSS and result.url == srv.url("/new?x=1")


def test_redirect_chain_limit(srv: LoopbackHTTP) -> None:
    for i in range(8):
        srv.routes[f"/r{i}"] = Response(302, {"Location": f"/r{i + 1}"}, b"")
    srv.routes["/r8"] = Response(200, {}, RSS)
    assert fetch(srv.url("/r3")).body == RSS  # 5 hops: allowed
    with pytest.raises(RedirectError) as err:
        fetch(srv.url("/r2"))  # 6 hops
    assert err.value.reason == "too many redirects (5)"
    with pytest.raises(RedirectError, match=r"too many redirects \(1\)"):
        fetch(srv.url("/r6"), max_redirects=1)


def test_redirect_without_location(srv: LoopbackHTTP) -> None:
    srv.routes["/r"] = Response(302, {}, b"")
    with pytest.raises(RedirectError, match="without Location"):
        fetch(srv.url("/r"))


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "file:///etc/passwd", "gopher://x/"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(AddressRefused, match="only http and https"):
        fetch(url)


def test_policy_refuses_loopback_by_default(srv: LoopbackHTTP) -> None:
    srv.routes["/refused"] = Response(200, {}, RSS)
    with pytest.raises(AddressRefused) as err:
        fetch(srv.url("/refused"), allow_private=False)
    assert err.value.reason == "loopback address 127.0.0.1 refused"
    port = int(srv.base.rsplit(":", 1)[1])
    with pytest.raises(AddressRefused, match="loopback address 127.0.0.1 refused"):
        fetch(f"http://localhost:{port}/refused", allow_private=False)  # checked after DNS
    assert srv.requests_to("/refused") == []


def test_allowed_endpoint_is_exact(srv: LoopbackHTTP) -> None:
    srv.routes["/allowed"] = Response(200, {}, RSS)
    port = int(srv.base.rsplit(":", 1)[1])
    ok = fetch(srv.url("/allowed"), allow_private=False, allowed_endpoints=[("127.0.0.1", port)])
    assert ok.body == RSS
    with pytest.raises(AddressRefused):
        fetch(
            srv.url("/allowed"),
            allow_private=False,
            allowed_endpoints=[("127.0.0.1", port + 1)],
        )


def test_connection_refused_is_a_fetch_error() -> None:
    with LoopbackHTTP() as server:
        url = server.url("/gone")
    with pytest.raises(FetchError, match="connection failed"):
        fetch(url)


def test_per_host_connection_limit(srv: LoopbackHTTP) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow(req: Request) -> Response:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.15)
        with lock:
            active -= 1
        return Response(200, {}, RSS)

    srv.routes["/slow"] = slow

    async def go() -> None:
        async with Fetcher(
            timeout=5, max_bytes=10_000, allow_private=True, contact=None,
            per_host_connections=2, per_host_interval=0,
        ) as f:  # fmt: skip
            await asyncio.gather(*(f.fetch(srv.url("/slow")) for _ in range(6)))

    asyncio.run(go())
    assert peak == 2


def test_per_host_interval_spaces_request_starts(srv: LoopbackHTTP) -> None:
    starts: list[float] = []

    def stamp(req: Request) -> Response:
        starts.append(time.monotonic())
        return Response(200, {}, RSS)

    srv.routes["/f"] = stamp

    async def go() -> None:
        async with Fetcher(
            timeout=5, max_bytes=10_000, allow_private=True, contact=None,
            per_host_connections=4, per_host_interval=0.2,
        ) as f:  # fmt: skip
            await asyncio.gather(*(f.fetch(srv.url("/f")) for _ in range(3)))

    asyncio.run(go())
    starts.sort()
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(gaps) == 2 and min(gaps) >= 0.17


def test_from_config_reads_fetch_settings(srv: LoopbackHTTP) -> None:
    cfg = SimpleNamespace(
        timeout=timedelta(seconds=20),
        max_bytes=10 * 1024 * 1024,
        allow_private_addresses=False,
        contact="mailto:ops@example.org",
        max_redirects=3,
        per_host_connections=1,
        per_host_interval=timedelta(milliseconds=500),
    )
    f = Fetcher.from_config(cfg)  # type: ignore[arg-type]
    assert f.timeout == 20.0 and f.max_bytes == 10 * 1024 * 1024
    assert f.max_redirects == 3 and f.per_host_interval == 0.5
    assert not f.policy.allow_private
    assert f.user_agent.endswith("(+mailto:ops@example.org)")


def test_human_size() -> None:
    assert human_size(10 * 1024 * 1024) == "10 MB"
    assert human_size(10_000_000) == "10 MB"
    assert human_size(1536) == "1.5 kB" or human_size(1536) == "1536 bytes"
