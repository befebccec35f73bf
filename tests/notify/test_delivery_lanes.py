"""One stuck receiver never delays another channel: each channel has its own
concurrency, and the daemon runs one delivery pass per channel."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.notify.test_notify_support import (
    SMTPServer,
    add_alerts,
    email_config,
    notify_config,
    open_store,
    scored,
    smtp_server,
    webhook,
)
from tests.support import LoopbackHTTP, Request, Response
from watchtower.notify.outbox import DeliveryWorker

__all__ = ["smtp_server"]

ALERTS = 20
HANG = 8.0


@pytest.mark.timeout(120)
def test_a_webhook_that_never_answers_does_not_delay_immediate_emails(
    http_server: LoopbackHTTP, smtp_server: SMTPServer, store_url: str
) -> None:
    def hang(req: Request) -> Response:
        time.sleep(HANG)
        return Response(200)

    http_server.routes["/hang"] = hang
    notify = notify_config(
        [webhook(http_server.url("/hang"), timeout=f"{HANG / 2}s")],
        email_config(smtp_server.port, immediate_min_score=0.5),
    )
    with open_store(store_url) as store:
        entries = [
            scored("Daily NK", f"g{i}", 0.9, signature=f"s{i}".encode()) for i in range(ALERTS)
        ]
        assert len(add_alerts(store, notify, entries)) == ALERTS
        worker = DeliveryWorker(store, notify)
        assert worker.lanes() == [
            f"webhook:{notify.webhooks[0].key}",
            "email",
            "digest",
            "events",
        ]

        async def go() -> float:
            started = time.monotonic()
            # As the daemon does: one pass per lane, side by side.
            tasks = [asyncio.create_task(worker.run_once([lane])) for lane in worker.lanes()]
            while len(smtp_server.messages) < ALERTS:
                assert time.monotonic() - started < 60, "emails never went out"
                await asyncio.sleep(0.05)
            took = time.monotonic() - started
            await asyncio.gather(*tasks)
            await worker.aclose()
            return took

        took = asyncio.run(go())
    # The 20 webhook posts each wait HANG / 2 s, 8 at a time (12 s in all); the emails
    # must not queue behind them.
    assert took < HANG / 2, f"emails took {took:.1f}s behind a stuck webhook"


def test_a_pass_limited_to_one_lane_claims_only_that_channel(
    http_server: LoopbackHTTP, smtp_server: SMTPServer, store_url: str
) -> None:
    http_server.routes["/ok"] = Response(200)
    notify = notify_config(
        [webhook(http_server.url("/ok"))],
        email_config(smtp_server.port, immediate_min_score=0.5),
    )
    with open_store(store_url) as store:
        add_alerts(store, notify, [scored("Daily NK", "one", 0.9)])
        worker = DeliveryWorker(store, notify)

        async def go() -> tuple[int, int]:
            first = await worker.run_once(["email"])
            second = await worker.run_once()
            await worker.aclose()
            return first.sent, second.sent

        assert asyncio.run(go()) == (1, 1)
    assert len(smtp_server.messages) == 1
    assert len(http_server.requests_to("/ok")) == 1
