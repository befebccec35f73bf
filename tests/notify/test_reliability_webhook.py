"""Webhook answers are read to a small cap: a 300 MB body costs kilobytes, and a 2xx is
delivered however long (or stalled) its body is. Real loopback receivers, real store."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.notify.test_notify_support import (
    NOW,
    FakeClock,
    add_alerts,
    no_jitter,
    notify_config,
    scored,
    webhook,
)
from tests.support import LoopbackHTTP, Request, Response
from watchtower.models import Explanation, Match
from watchtower.notify.outbox import DeliveryWorker
from watchtower.notify.webhook import MAX_RESPONSE_BYTES, post_webhook, webhook_payload
from watchtower.store import AlertView, Store

MB = 1024 * 1024
HUGE = 300 * MB
CHUNK = b"x" * MB  # one object, sent again and again: the receiver itself stays small


def huge_body(req: Request) -> Response:
    def body() -> Iterator[bytes]:
        for _ in range(HUGE // MB):
            yield CHUNK

    return Response(200, {"Content-Type": "text/plain", "Content-Length": str(HUGE)}, body())


def stalled_body(req: Request) -> Response:
    def body() -> Iterator[bytes]:
        yield b"accepted, and then nothing for a long time"
        time.sleep(3)

    return Response(202, {}, body())


def payload() -> dict[str, object]:
    view = AlertView(
        id=1,
        story_id=1,
        created_at=NOW,
        score=0.9,
        title="t",
        url="https://news.example/a",
        source="s",
        published=datetime(2026, 5, 5, tzinfo=UTC),
        sources=(),
        explanation=Explanation(matches=(Match("entity", "North Korea", 0.4, 2),)),
        diff=(),
    )
    return webhook_payload(view)


def peak_growth(fn: object) -> tuple[int, float]:
    """Peak traced memory (bytes) above the start while running ``fn``, and seconds."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        started = time.monotonic()
        asyncio.run(fn())  # type: ignore[operator]
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, elapsed


@pytest.mark.timeout(60)
def test_huge_2xx_body_is_read_to_the_cap_and_delivered(http_server: LoopbackHTTP) -> None:
    http_server.routes["/hook"] = huge_body
    cfg = webhook(http_server.url("/hook"), timeout="20s")

    async def go() -> None:
        async with httpx.AsyncClient() as client:
            await post_webhook(client, cfg, "msg_huge", payload(), now=NOW.timestamp())

    growth, elapsed = peak_growth(go)
    assert growth < 4 * MB, f"memory grew by {growth / MB:.1f} MB for a 300 MB answer"
    assert elapsed < 10
    assert MAX_RESPONSE_BYTES <= 64 * 1024


@pytest.mark.timeout(30)
def test_2xx_with_a_stalled_body_is_delivered_within_the_timeout(
    http_server: LoopbackHTTP,
) -> None:
    http_server.routes["/hook"] = stalled_body
    cfg = webhook(http_server.url("/hook"), timeout="1s")

    async def go() -> None:
        async with httpx.AsyncClient() as client:
            await post_webhook(client, cfg, "msg_stall", payload(), now=NOW.timestamp())

    started = time.monotonic()
    asyncio.run(go())
    assert time.monotonic() - started < 2.5


@pytest.mark.timeout(60)
def test_worker_marks_a_huge_answer_delivered_without_reading_it(
    store: Store, http_server: LoopbackHTTP
) -> None:
    http_server.routes["/hook"] = huge_body
    notify = notify_config([webhook(http_server.url("/hook"), timeout="20s")])
    add_alerts(store, notify, [scored("Daily NK", "a", 0.9)])
    worker = DeliveryWorker(store, notify, clock=FakeClock(), rng=no_jitter)
    result: list[int] = []

    async def go() -> None:
        try:
            result.append((await worker.run_once()).sent)
        finally:
            await worker.aclose()

    growth, _elapsed = peak_growth(go)
    assert result == [1]
    assert store.counts()["deliveries_sent"] == 1
    assert growth < 16 * MB, f"memory grew by {growth / MB:.1f} MB for a 300 MB answer"
