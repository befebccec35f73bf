"""Unchanged sources are cheap: conditional requests reuse one connection."""

from __future__ import annotations

import asyncio

from tests.support import LoopbackHTTP, feed_with_etag
from watchtower.fetch import Fetcher


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
