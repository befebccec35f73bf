"""The delivery worker puts the analyst's verdict and the feedback links (``web.public_url``
set) into webhook bodies, over the real store."""

from __future__ import annotations

import asyncio
import json

from tests.notify.test_notify_support import (
    NOW,
    FakeClock,
    add_alerts,
    no_jitter,
    notify_config,
    open_store,
    scored,
    webhook,
)
from tests.support import LoopbackHTTP, Response
from watchtower.notify.outbox import DeliveryWorker
from watchtower.web.tokens import feedback_links, verify_token

KEY = b"k" * 32


def test_webhook_body_carries_feedback_and_links(store_url: str, http_server: LoopbackHTTP) -> None:
    http_server.routes["/hook"] = Response(200, {}, b"ok")
    notify = notify_config([webhook(http_server.url("/hook"))])
    clock = FakeClock()
    with open_store(store_url) as store:
        [alert_id] = add_alerts(store, notify, [scored("Daily NK", "a", 0.9)])
        store.record_feedback(alert_id, "relevant")

        def links(i: int) -> dict[str, str]:
            return feedback_links("https://wt.example.org", i, KEY, NOW)

        worker = DeliveryWorker(store, notify, clock=clock, rng=no_jitter, links=links)

        async def go() -> None:
            try:
                await worker.run_once()
            finally:
                await worker.aclose()

        asyncio.run(go())
    [request] = http_server.requests_to("/hook")
    body = json.loads(request.body)
    assert body["alert_id"] == alert_id and body["feedback"] == "relevant"
    assert body["lang"] == "und" and body["excerpt"] == "" and body["archive"] is None
    token = body["feedback_links"]["not_relevant"].rpartition("/")[2]
    granted = verify_token(token, KEY, now=NOW)
    assert (granted.alert_id, granted.verdict) == (alert_id, "not-relevant")
