"""Apprise channels against loopback receivers: Apprise's ``json://`` and an ntfy stand-in.

Real Apprise, the real store and delivery worker; only time is faked. The Apprise URL
holds a password that must never reach a log line or ``check`` output.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

import pytest

from tests.notify.test_notify_support import (
    NOW,
    FakeClock,
    add_alerts,
    no_jitter,
    notify_config,
    scored,
)
from tests.support import LoopbackHTTP, Response
from watchtower import health
from watchtower.config import NotifyConfig
from watchtower.config.apprise import AppriseConfig
from watchtower.config.summary import _apprise_lines
from watchtower.notify.outbox import DeliveryStats, DeliveryWorker, channels_for
from watchtower.store import Store

PASSWORD = "s3cret-apprise-pw"


def apprise(url: str, **extra: object) -> NotifyConfig:
    return notify_config(apprise=[AppriseConfig.model_validate({"url": url, **extra})])


def deliver(store: Store, notify: NotifyConfig, clock: FakeClock) -> DeliveryStats:
    async def go() -> DeliveryStats:
        async with DeliveryWorker(store, notify, clock=clock, rng=no_jitter) as worker:
            return await worker.drain(clock() + 30)

    return asyncio.run(go())


def host(server: LoopbackHTTP) -> str:
    return server.base.removeprefix("http://")


def test_json_channel_receives_every_alert_once(store: Store, http_server: LoopbackHTTP) -> None:
    http_server.routes["/apprise"] = Response(200, {}, b"{}")
    notify = apprise(f"json://{host(http_server)}/apprise", min_score=0.6)
    entries = [scored("Daily NK", f"g{n}", 0.7 + n / 100, title=f"Story {n}") for n in range(3)]
    entries.append(scored("Daily NK", "low", 0.55, title="Below this channel's min_score"))
    add_alerts(store, notify, entries)
    clock = FakeClock()

    assert deliver(store, notify, clock).sent == 3
    assert deliver(store, notify, clock) == DeliveryStats()
    bodies = [json.loads(r.body) for r in http_server.requests_to("/apprise")]
    assert sorted(b["title"] for b in bodies) == ["Story 0", "Story 1", "Story 2"]
    message = bodies[0]["message"].splitlines()
    assert message[0].startswith("score 0.7") and "Daily NK" in message[0]
    assert message[1].startswith("why: ") and "North Korea" in message[1]
    assert message[2].startswith("https://news.example/g")
    assert all(len(b["message"]) < 400 for b in bodies), "short enough for a phone"


def test_receiver_down_is_retried_and_the_url_never_logged(
    store: Store, http_server: LoopbackHTTP, caplog: pytest.LogCaptureFixture
) -> None:
    http_server.routes["/apprise"] = Response(503, {}, b"down")
    url = f"json://watch:{PASSWORD}@{host(http_server)}/apprise"
    notify = apprise(url)
    add_alerts(store, notify, [scored("Daily NK", "g1", 0.9)])
    clock = FakeClock()
    with caplog.at_level(logging.DEBUG):
        assert deliver(store, notify, clock).retried == 1
        http_server.routes["/apprise"] = Response(200, {}, b"{}")
        clock.advance(10)
        assert deliver(store, notify, clock).sent == 1
    assert len(http_server.requests_to("/apprise")) == 2
    assert PASSWORD not in caplog.text
    pending = store.pending_by_channel()
    assert not pending
    summary = "\n".join(_apprise_lines(notify.apprise))
    assert PASSWORD not in summary and "json://***" in summary
    assert PASSWORD not in repr(notify)


def test_ntfy_stand_in_receives_health_events(store: Store, http_server: LoopbackHTTP) -> None:
    """A chat service's URL form (ntfy) pointed at a local stand-in."""
    http_server.routes["/"] = Response(200, {"Content-Type": "application/json"}, b'{"id": "1"}')
    notify = apprise(f"ntfy://{host(http_server)}/watchtower-alerts")
    assert channels_for(notify)(0.9) == [notify.apprise[0].channel]
    limits = {"HRW": health.Limits(timedelta(minutes=10), timedelta(days=14))}
    store.record_failure("HRW", "HTTP 404 Not Found", now=NOW, next_due_at=None)
    later = NOW + timedelta(minutes=11)
    changes = health.plan_changes(store.health_inputs(["HRW"]), limits, later)
    store.apply_health(changes, health.event_channels(notify), later)
    clock = FakeClock()
    clock.advance(11 * 60)

    assert deliver(store, notify, clock).sent == 1
    assert deliver(store, notify, clock) == DeliveryStats()
    (request,) = http_server.requests_to("/")
    body = json.loads(request.body)
    assert body["topic"] == "watchtower-alerts"
    assert body["title"] == "Watchtower: HRW is failing"
    assert body["message"].startswith("HTTP 404 Not Found (since 2026-05-05T09:30")


def test_an_apprise_url_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not an Apprise URL"):
        AppriseConfig.model_validate({"url": "no scheme here"})
