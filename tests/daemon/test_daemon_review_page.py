"""The daemon serves the review page on ``web.listen`` over its store, and stops it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from watchtower.config import Config
from watchtower.review import signing_key, start_review_page
from watchtower.store import Store

pytestmark = pytest.mark.timeout(60)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_review_page_serves_the_store_and_stops(tmp_path: Path) -> None:
    port = _free_port()
    config = Config.model_validate(
        {"store": f"sqlite:///{tmp_path}/wt.db", "web": {"listen": f"127.0.0.1:{port}"}}
    )

    async def go() -> None:
        with Store.open(config.store) as store:
            handle = await start_review_page(config, store)
            assert handle is not None
            async with httpx.AsyncClient() as client:
                answer = await client.get(f"{handle.url}/api/alerts")
                assert answer.status_code == 200 and answer.json() == []
            await handle.stop(timeout=2)
            with pytest.raises(httpx.ConnectError):
                async with httpx.AsyncClient() as client:
                    await client.get(f"{handle.url}/api/alerts")
            # without web.secret the key is kept in the store: links survive restarts
            assert await asyncio.to_thread(signing_key, config, store) == signing_key(config, store)

    asyncio.run(go())


def test_review_page_is_off_unless_listen_is_set(tmp_path: Path) -> None:
    config = Config.model_validate({"store": f"sqlite:///{tmp_path}/wt.db"})

    async def go() -> None:
        with Store.open(config.store) as store:
            assert await start_review_page(config, store) is None

    asyncio.run(go())


def test_a_configured_secret_derives_the_key(tmp_path: Path) -> None:
    from watchtower.web.tokens import derive_key

    config = Config.model_validate(
        {"store": f"sqlite:///{tmp_path}/wt.db", "web": {"secret": "s3cret-value"}}
    )
    with Store.open(config.store) as store:
        assert signing_key(config, store) == derive_key("s3cret-value")
