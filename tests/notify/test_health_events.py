"""Source health events: one per change of state, delivered at least once, never repeated.

The real store (SQLite and PostgreSQL), a loopback webhook receiver, the real delivery
worker; only time is faked.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest

from tests.notify.test_notify_support import (
    NOW,
    SECRET,
    FakeClock,
    SMTPServer,
    email_config,
    no_jitter,
    notify_config,
    reference_verify,
    scored,
    smtp_server,
    webhook,
)
from tests.support import LoopbackHTTP, Response
from watchtower import health
from watchtower.config import NotifyConfig
from watchtower.models import FetchState
from watchtower.notify.outbox import DeliveryStats, DeliveryWorker
from watchtower.store import Store

__all__ = ["smtp_server"]

LIMITS = {"HRW": health.Limits(timedelta(minutes=10), timedelta(days=14))}


def check(store: Store, notify: NotifyConfig, now: datetime) -> list[str]:
    """One health check (what ``health.check_health`` does), returning the event types."""
    changes = health.plan_changes(store.health_inputs(list(LIMITS)), LIMITS, now)
    if changes:
        store.apply_health(changes, health.event_channels(notify), now)
    return [change.type for change in changes]


def succeed(store: Store, now: datetime) -> None:
    store.record_poll("HRW", FetchState(), [], threshold=0.5, channels=lambda _: [], now=now)


def deliver(store: Store, notify: NotifyConfig, clock: FakeClock) -> DeliveryStats:
    async def go() -> DeliveryStats:
        async with DeliveryWorker(store, notify, clock=clock, rng=no_jitter) as worker:
            return await worker.run_once()

    return asyncio.run(go())


def test_flapping_source_gives_one_event_per_change_of_state(store: Store) -> None:
    notify = notify_config()
    t = NOW
    succeed(store, t)
    store.record_failure("HRW", "HTTP 404 Not Found", now=t, next_due_at=None)
    assert check(store, notify, t + timedelta(minutes=5)) == [], "not failing long enough"
    assert check(store, notify, t + timedelta(minutes=11)) == ["source.failing"]
    assert check(store, notify, t + timedelta(minutes=12)) == [], "never repeated"

    succeed(store, t + timedelta(minutes=13))
    assert check(store, notify, t + timedelta(minutes=14)) == ["source.recovered"]
    assert check(store, notify, t + timedelta(minutes=15)) == []

    store.record_failure(
        "HRW", "selector `main` matches nothing", now=t + timedelta(minutes=16), next_due_at=None
    )
    assert check(store, notify, t + timedelta(minutes=30)) == ["source.failing"]
    assert check(store, notify, t + timedelta(minutes=40)) == []

    events = store.source_events()
    assert [e.type for e in events] == ["source.failing", "source.recovered", "source.failing"]
    assert events[-1].reason == "selector `main` matches nothing"
    status = store.health_statuses()["HRW"]
    assert status.failing and status.reason == "selector `main` matches nothing"


def test_recovery_between_two_checks_is_still_reported(store: Store) -> None:
    """Fail, ok, fail again before the next check: recovered, then failing once more."""
    notify = notify_config()
    t = NOW
    succeed(store, t)
    store.record_failure("HRW", "HTTP 500", now=t, next_due_at=None)
    assert check(store, notify, t + timedelta(minutes=11)) == ["source.failing"]
    succeed(store, t + timedelta(minutes=12))
    store.record_failure("HRW", "HTTP 502", now=t + timedelta(minutes=13), next_due_at=None)
    assert check(store, notify, t + timedelta(minutes=30)) == ["source.recovered", "source.failing"]


def test_quiet_source_is_reported_once_and_recovers_with_new_items(store: Store) -> None:
    notify = notify_config()
    limits = {"HRW": health.Limits(timedelta(days=1), timedelta(hours=6))}
    succeed(store, NOW)
    rows = store.health_inputs(["HRW"])
    quiet_at = rows[0].last_new_item_at + timedelta(hours=6)
    changes = health.plan_changes(rows, limits, quiet_at)
    assert [c.type for c in changes] == ["source.quiet"]
    store.apply_health(changes, health.event_channels(notify), quiet_at)
    later = health.plan_changes(store.health_inputs(["HRW"]), limits, quiet_at + timedelta(days=3))
    assert later == []
    assert store.health_statuses()["HRW"].quiet


def test_receiver_down_for_the_event_gets_it_once_after_recovery(
    store: Store, http_server: LoopbackHTTP
) -> None:
    http_server.routes["/hook"] = Response(503, {}, b"down")
    notify = notify_config([webhook(http_server.url("/hook"))])
    clock = FakeClock()
    store.record_failure("HRW", "HTTP 404 Not Found", now=NOW, next_due_at=None)
    assert check(store, notify, NOW + timedelta(minutes=11)) == ["source.failing"]
    clock.advance(11 * 60)

    assert deliver(store, notify, clock).retried == 1
    http_server.routes["/hook"] = Response(204, {}, b"")
    clock.advance(1)
    assert deliver(store, notify, clock).sent == 0, "not due before its retry time"
    clock.advance(10)
    assert deliver(store, notify, clock).sent == 1
    clock.advance(3600)
    assert deliver(store, notify, clock) == DeliveryStats()

    accepted = http_server.requests_to("/hook")[1:]
    assert len(accepted) == 1
    request = accepted[0]
    reference_verify(SECRET, request.headers, request.body, now=clock() - 3600)
    body = json.loads(request.body)
    assert body == {
        "type": "source.failing",
        "source": "HRW",
        "url": "http://127.0.0.1:9/hrw.xml",
        "reason": "HTTP 404 Not Found",
        "since": NOW.isoformat(),
    }
    first, retried = http_server.requests_to("/hook")
    assert first.headers["webhook-id"] == retried.headers["webhook-id"]


def test_an_event_and_its_deliveries_are_one_transaction(store: Store) -> None:
    notify = notify_config([webhook("https://hooks.example.org/a")])
    store.record_failure("HRW", "HTTP 404 Not Found", now=NOW, next_due_at=None)
    changes = health.plan_changes(store.health_inputs(["HRW"]), LIMITS, NOW + timedelta(hours=1))
    broken = [changes[0], changes[0]]  # the same event twice: the second delivery collides
    with pytest.raises(Exception):  # noqa: B017 - any store error
        store.apply_health(broken, ["webhook:a", "webhook:a"], NOW)
    assert store.source_events() == []
    assert not store.health_statuses()["HRW"].failing
    assert check(store, notify, NOW + timedelta(hours=1)) == ["source.failing"]


def test_health_event_email_is_short_and_sent_once(store: Store, smtp_server: SMTPServer) -> None:
    notify = notify_config([], email_config(smtp_server.port))
    clock = FakeClock()
    store.record_failure("HRW", "not a feed: HTML page", now=NOW, next_due_at=None)
    assert check(store, notify, NOW + timedelta(minutes=11)) == ["source.failing"]
    clock.advance(11 * 60)
    assert deliver(store, notify, clock).sent == 1
    assert deliver(store, notify, clock) == DeliveryStats()
    [message] = smtp_server.messages
    assert message["Subject"] == "[Watchtower] HRW is failing"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "not a feed: HTML page" in text and "http://127.0.0.1:9/hrw.xml" in text
    assert len(text) < 400


def test_quiet_then_failing_then_back_with_news_is_one_recovery(store: Store) -> None:
    notify = notify_config()
    limits = {"HRW": health.Limits(timedelta(minutes=10), timedelta(hours=6))}
    succeed(store, NOW)
    start = store.health_inputs(["HRW"])[0].last_new_item_at

    def run(at: datetime) -> list[str]:
        changes = health.plan_changes(store.health_inputs(["HRW"]), limits, at)
        store.apply_health(changes, health.event_channels(notify), at)
        return [c.type for c in changes]

    assert run(start + timedelta(hours=7)) == ["source.quiet"]
    store.record_failure("HRW", "HTTP 500", now=start + timedelta(hours=8), next_due_at=None)
    assert run(start + timedelta(hours=9)) == ["source.failing"]
    fresh = [scored("HRW", "news", 0.1)]
    later = start + timedelta(hours=10)
    store.record_poll("HRW", FetchState(), fresh, threshold=0.5, channels=lambda _: [], now=later)
    assert run(later + timedelta(minutes=1)) == ["source.recovered"]
    status = store.health_statuses()["HRW"]
    assert not status.failing and not status.quiet
    assert status.last_new_item_at is not None and status.last_new_item_at >= later


def test_a_webhook_gone_for_an_event_is_switched_off(
    store: Store, http_server: LoopbackHTTP
) -> None:
    http_server.routes["/hook"] = Response(410, {}, b"gone")
    notify = notify_config([webhook(http_server.url("/hook"))])
    clock = FakeClock()
    store.record_failure("HRW", "HTTP 404 Not Found", now=NOW, next_due_at=None)
    assert check(store, notify, NOW + timedelta(minutes=11)) == ["source.failing"]
    clock.advance(11 * 60)
    assert deliver(store, notify, clock).dead == 1
    assert "webhook:ngo" in store.disabled_channels()
    assert store.event_delivery_counts() == {"dead": 1}
