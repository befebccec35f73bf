"""Save Page Now through the outbox, against a loopback stand-in for web.archive.org.

Off by default. When on, every alert gets a ``savepagenow`` delivery in the poll's
transaction; the worker asks ``<endpoint><url>``, retries 429 / 5xx with backoff
(honouring Retry-After), accepts 2xx and 3xx, and makes any other 4xx a dead letter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest

from tests.notify.test_notify_support import FakeClock, no_jitter, open_store, scored
from tests.support import LoopbackHTTP, Request, Response
from watchtower.config import NotifyConfig
from watchtower.config.evidence import SAVE_PAGE_NOW_ENDPOINT, ArchiveConfig
from watchtower.models import FetchState
from watchtower.notify.outbox import DeliveryStats, DeliveryWorker, channels_for
from watchtower.notify.savepagenow import SAVE_PAGE_NOW_CHANNEL, capture_url, with_save_page_now
from watchtower.store import Store

URL = "https://news.example/spn-1"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as s:
        yield s


def archive_config(server: LoopbackHTTP, *, on: bool = True) -> ArchiveConfig:
    return ArchiveConfig(
        save_page_now=on, save_page_now_endpoint=server.url("/save/"), save_page_now_timeout="5s"
    )


def add_alert(store: Store, archive: ArchiveConfig, guids: Sequence[str] = ("spn-1",)) -> None:
    channels = with_save_page_now(channels_for(NotifyConfig()), archive)
    entries = [scored("Daily NK", guid, 0.9) for guid in guids]
    store.record_poll(
        "Daily NK",
        FetchState(),
        entries,
        threshold=0.5,
        channels=channels,
        now=FakeClock().dt,
    )


def run(store: Store, archive: ArchiveConfig, clock: FakeClock) -> DeliveryStats:
    async def go() -> DeliveryStats:
        worker = DeliveryWorker(
            store, NotifyConfig(), clock=clock, rng=no_jitter, save_page_now=archive
        )
        async with worker:
            return await worker.run_once()

    return asyncio.run(go())


def test_off_by_default_and_added_to_every_alert_when_on() -> None:
    assert ArchiveConfig().save_page_now is False
    assert ArchiveConfig().save_page_now_endpoint == SAVE_PAGE_NOW_ENDPOINT
    off = with_save_page_now(lambda score: ["digest"], ArchiveConfig())
    on = with_save_page_now(lambda score: ["digest"], ArchiveConfig(save_page_now=True))
    assert off(0.9) == ["digest"]
    assert on(0.51) == ["digest", SAVE_PAGE_NOW_CHANNEL]
    assert capture_url(ArchiveConfig(), URL) == "https://web.archive.org/save/" + URL


def test_capture_is_retried_then_accepted(store: Store, http_server: LoopbackHTTP) -> None:
    path = "/save/" + URL
    answers = iter(
        [
            Response(429, {"Retry-After": "120"}, b"slow down"),
            Response(302, {"Location": "https://web.archive.org/web/2026/" + URL}, b""),
        ]
    )

    def stand_in(req: Request) -> Response:
        return next(answers)

    http_server.routes[path] = stand_in
    archive = archive_config(http_server)
    add_alert(store, archive)
    clock = FakeClock()

    assert run(store, archive, clock) == DeliveryStats(retried=1)
    clock.advance(60)
    assert run(store, archive, clock) == DeliveryStats()  # Retry-After: 120 s
    clock.advance(61)
    assert run(store, archive, clock) == DeliveryStats(sent=1)
    requests = http_server.requests_to(path)
    assert len(requests) == 2
    assert all(r.method == "GET" for r in requests)
    assert "Save Page Now" in requests[0].headers["user-agent"]
    clock.advance(timedelta(days=1).total_seconds())
    assert run(store, archive, clock) == DeliveryStats()  # sent once, never again


def test_a_refusal_is_a_dead_letter_and_disables_nothing(
    store: Store, http_server: LoopbackHTTP
) -> None:
    http_server.routes["/save/" + URL] = Response(403, {}, b"blocked by robots.txt")
    archive = archive_config(http_server)
    add_alert(store, archive)
    assert run(store, archive, FakeClock()) == DeliveryStats(dead=1)
    dead = store.dead_deliveries()
    assert [(job.channel, why) for job, why in dead] == [
        (SAVE_PAGE_NOW_CHANNEL, "savepagenow: HTTP 403")
    ]
    assert store.disabled_channels() == {}


def test_switched_off_nothing_is_asked(store: Store, http_server: LoopbackHTTP) -> None:
    archive = archive_config(http_server, on=False)
    add_alert(store, archive)
    assert store.pending_by_channel() == {}
    assert run(store, archive, FakeClock()) == DeliveryStats()
    assert http_server.requests == []
