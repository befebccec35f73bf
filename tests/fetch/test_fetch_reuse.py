"""Unchanged sources are cheap: conditional requests reuse one connection, and a
connection that cannot serve the next request is never used for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.support import LoopbackHTTP, Response, ScriptedServer, feed_with_etag, trickle
from watchtower.errors import BodyTooLarge, FetchError, FetchTimeout
from watchtower.fetch import Fetcher
from watchtower.http11 import Origin, Request
from watchtower.models import FetchResult
from watchtower.netpolicy import AddressPolicy
from watchtower.transport import GuardedTransport


def test_304_answers_keep_the_connection_for_the_next_poll(http_server: LoopbackHTTP) -> None:
    http_server.routes["/a.xml"] = feed_with_etag(b"<rss version='2.0'/>", '"v1"')

    async def poll_twenty_times() -> None:
        async with Fetcher(
            timeout=5, max_bytes=10**6, allow_private=True, contact=None, per_host_interval=0
        ) as fetcher:
            for _ in range(20):
                result = await fetcher.fetch(http_server.url("/a.xml"), etag='"v1"')
                assert result.not_modified

    asyncio.run(poll_twenty_times())
    peers = {r.peer for r in http_server.requests_to("/a.xml")}
    assert len(http_server.requests_to("/a.xml")) == 20
    assert len(peers) == 1, f"{len(peers)} connections for 20 polls"


def _fetcher(**kwargs: Any) -> Fetcher:
    options: dict[str, Any] = {
        "timeout": 5, "max_bytes": 10**6, "allow_private": True, "contact": None,
        "per_host_interval": 0,
    }  # fmt: skip
    return Fetcher(**(options | kwargs))


def _polls(*steps: Callable[[Fetcher], Awaitable[object]], **kwargs: Any) -> list[object]:
    """Run ``steps`` one after the other on one Fetcher; each one's result or error."""

    async def run() -> list[object]:
        out: list[object] = []
        async with _fetcher(**kwargs) as fetcher:
            for step in steps:
                try:
                    out.append(await step(fetcher))
                except FetchError as exc:
                    out.append(exc)
        return out

    return asyncio.run(run())


def test_an_answer_that_closes_its_connection_is_not_reused(http_server: LoopbackHTTP) -> None:
    http_server.routes["/close.xml"] = Response(200, {"Connection": "close"}, b"<rss/>")
    http_server.routes["/next.xml"] = Response(200, {}, b"<rss/>")
    first, second = _polls(
        lambda f: f.fetch(http_server.url("/close.xml")),
        lambda f: f.fetch(http_server.url("/next.xml")),
    )
    assert isinstance(first, FetchResult) and isinstance(second, FetchResult)
    assert second.body == b"<rss/>"
    peers = [r.peer for r in http_server.requests]
    assert peers[0] != peers[1], "a closed connection was used again"


def test_a_refused_body_costs_its_connection_not_the_next_poll(http_server: LoopbackHTTP) -> None:
    http_server.routes["/big.xml"] = Response(200, {}, b"x" * 5000)
    http_server.routes["/small.xml"] = feed_with_etag(b"<rss/>", '"v1"')
    big, small, again = _polls(
        lambda f: f.fetch(http_server.url("/big.xml")),
        lambda f: f.fetch(http_server.url("/small.xml")),
        lambda f: f.fetch(http_server.url("/small.xml"), etag='"v1"'),
        max_bytes=1000,
    )
    assert isinstance(big, BodyTooLarge)
    assert isinstance(small, FetchResult) and small.body == b"<rss/>"
    assert isinstance(again, FetchResult) and again.not_modified
    peers = [r.peer for r in http_server.requests]
    assert peers[0] != peers[1], "a connection with an unread body was used again"
    assert peers[1] == peers[2]


def test_a_timed_out_answer_costs_its_connection_not_the_next_poll(
    http_server: LoopbackHTTP,
) -> None:
    http_server.routes["/slow.xml"] = Response(200, {}, trickle(b"<rss>" + b" " * 200, 0.05))
    http_server.routes["/fast.xml"] = Response(200, {}, b"<rss/>")
    slow, fast = _polls(
        lambda f: f.fetch(http_server.url("/slow.xml")),
        lambda f: f.fetch(http_server.url("/fast.xml")),
        timeout=0.5,
    )
    assert isinstance(slow, FetchTimeout)
    assert isinstance(fast, FetchResult) and fast.body == b"<rss/>"


def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    # Each connection's first request gets a keep-alive 304, then the server closes it
    # (a server's idle timeout).
    server = ScriptedServer(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n', linger=0.05)

    async def poll_after_pause(fetcher: Fetcher) -> FetchResult:
        await asyncio.sleep(0.3)  # the server has closed the idle connection by now
        return await fetcher.fetch(server.url(), etag='"v1"')

    try:
        results = _polls(poll_after_pause, poll_after_pause, poll_after_pause)
    finally:
        server.sock.close()
    assert all(isinstance(r, FetchResult) and r.not_modified for r in results), results
    assert server.connections == 3


def test_idle_connections_are_capped(http_server: LoopbackHTTP) -> None:
    """With room for one idle connection, two origins in turn each connect anew."""
    with LoopbackHTTP() as other:
        http_server.routes["/a.xml"] = other.routes["/a.xml"] = Response(200, {}, b"<rss/>")

        async def run() -> None:
            transport = GuardedTransport(AddressPolicy.build(allow_private=True), max_idle=1)
            try:
                for base in (http_server.base, other.base, http_server.base, other.base):
                    host, port = base.removeprefix("http://").split(":")
                    request = Request(Origin("http", host, int(port)), b"/a.xml", [(b"Host", b"x")])
                    async with transport.stream(request) as answer:
                        await answer.read()
            finally:
                await transport.aclose()

        asyncio.run(run())
        for server in (http_server, other):
            peers = [r.peer for r in server.requests_to("/a.xml")]
            assert len(peers) == 2 and peers[0] != peers[1]
