from __future__ import annotations

import asyncio
import logging
import signal

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from watchtower.web.server import is_loopback, parse_listen, serve


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


APP = Starlette(routes=[Route("/", _hello)])


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8080", True),
        ("127.1.2.3:80", True),
        ("[::1]:8080", True),
        ("localhost:8080", True),
        ("0.0.0.0:8080", False),
        ("[::]:8080", False),
        ("192.168.1.10:8080", False),
        ("watchtower.example.org:8080", False),
        ("garbage", False),
        (":8080", False),
    ],
)
def test_is_loopback(listen: str, expected: bool) -> None:
    assert is_loopback(listen) is expected


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("127.0.0.1", ":8080", "::1:8080", "host:99999", "host:http"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def test_serves_inside_the_callers_loop_without_taking_signals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        # asyncio.run installs its own SIGINT handler: compare against the loop's state.
        before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        handle = await serve(APP, "127.0.0.1", 0)
        try:
            assert handle.port > 0
            during = {sig: signal.getsignal(sig) for sig in before}
            assert during == before
            async with httpx.AsyncClient() as client:
                response = await client.get(handle.url + "/")
            assert response.text == "hello"
            assert "server" not in response.headers
        finally:
            await handle.stop(timeout=2)
        await handle.stop()  # a second stop is harmless
        assert {sig: signal.getsignal(sig) for sig in before} == before

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    access = [r for r in caplog.records if r.name == "uvicorn.access"]
    assert access and "GET / HTTP/1.1" in access[0].getMessage()


def test_address_in_use_is_an_oserror() -> None:
    async def scenario() -> None:
        first = await serve(APP, "127.0.0.1", 0)
        try:
            with pytest.raises(OSError):
                await serve(APP, "127.0.0.1", first.port)
        finally:
            await first.stop(timeout=2)

    asyncio.run(scenario())
