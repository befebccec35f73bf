"""A server that breaks HTTP/1.1 gives a short, clear reason and costs only its own
connection: each case is a raw loopback server sending exactly the bytes shown."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.support import ScriptedServer
from watchtower.errors import FetchError, FetchTimeout
from watchtower.fetch import Fetcher
from watchtower.models import FetchResult


def _fetch(url: str, *, timeout: float = 5, times: int = 1) -> list[FetchResult | FetchError]:
    async def run() -> list[FetchResult | FetchError]:
        out: list[FetchResult | FetchError] = []
        async with Fetcher(
            timeout=timeout, max_bytes=10**6, allow_private=True, contact=None, per_host_interval=0
        ) as fetcher:
            for _ in range(times):
                try:
                    out.append(await fetcher.fetch(url))
                except FetchError as exc:
                    out.append(exc)
        return out

    return asyncio.run(run())


def _error(url: str, **kwargs: float) -> FetchError:
    (result,) = _fetch(url, **kwargs)
    assert isinstance(result, FetchError), result
    return result


def test_server_that_closes_without_answering() -> None:
    with ScriptedServer(b"") as server:
        error = _error(server.url())
        assert error.url == server.url()
    assert error.reason == "connection failed: Server disconnected without sending a response."


def test_answer_that_is_not_http() -> None:
    with ScriptedServer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n") as server:
        assert _error(server.url()).reason.startswith("connection failed: ")


def test_header_block_over_100_kib_is_refused() -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"a" * 200_000 + b"\r\n\r\n<rss/>"
    with ScriptedServer(head) as server:
        assert _error(server.url()).reason.startswith("connection failed: ")


def test_body_shorter_than_its_content_length() -> None:
    with ScriptedServer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<rss>") as server:
        reason = _error(server.url()).reason
    assert reason.startswith("connection broken: "), reason


def test_broken_chunked_encoding() -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n<rss/>\r\n0\r\n\r\n"
    with ScriptedServer(answer) as server:
        assert _error(server.url()).reason.startswith("connection broken: ")


def test_chunked_body_and_informational_answers_are_read() -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: "v2"\r\n\r\n'
        b"3\r\n<rs\r\n4\r\ns/>\n\r\n0\r\n\r\n"
    )
    with ScriptedServer(answer, close=False) as server:
        results = _fetch(server.url(), times=3)
        assert all(isinstance(r, FetchResult) and r.body == b"<rss/>\n" for r in results)
        assert isinstance(results[0], FetchResult) and results[0].etag == '"v2"'
        assert (server.connections, server.requests) == (1, 3), "kept alive"


def test_body_without_length_ends_with_the_connection() -> None:
    with ScriptedServer(b"HTTP/1.1 200 OK\r\n\r\n<rss/>") as server:
        results = _fetch(server.url(), times=2)
        assert all(isinstance(r, FetchResult) and r.body == b"<rss/>" for r in results)
        assert server.connections == 2


def test_server_that_never_answers_times_out() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never reads
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"
        error = _error(url, timeout=0.3)
    finally:
        listener.close()
    assert isinstance(error, FetchTimeout)
    assert error.reason == "timeout after 0.3 s"


@pytest.mark.parametrize("etag", ['"v1"\r\nX-Injected: 1', '"v1"\n'])
def test_a_stored_validator_cannot_inject_a_header(etag: str) -> None:
    with ScriptedServer(b"HTTP/1.1 304 Not Modified\r\n\r\n", close=False) as server:

        async def run() -> FetchError:
            async with Fetcher(
                timeout=5, max_bytes=10**6, allow_private=True, contact=None
            ) as fetcher:
                with pytest.raises(FetchError) as err:
                    await fetcher.fetch(server.url(), etag=etag)
                return err.value

        error = asyncio.run(run())
        assert error.reason.startswith("connection failed: ")
        assert server.requests == 0, "nothing was sent"
