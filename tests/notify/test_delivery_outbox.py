"""The outbox worker with real parts: a loopback webhook receiver, aiosmtpd, and the real
store on SQLite and PostgreSQL. Only time and randomness are faked."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable

import pytest

from tests.notify.test_notify_support import (
    SECRET,
    FakeClock,
    SMTPServer,
    add_alerts,
    email_config,
    no_jitter,
    notify_config,
    reference_verify,
    scored,
    smtp_server,
    webhook,
)
from tests.support import LoopbackHTTP, Request, Response
from watchtower.config import NotifyConfig
from watchtower.notify.outbox import DeliveryStats, DeliveryWorker, channels_for, retry_delay
from watchtower.store import Store

__all__ = ["smtp_server"]


def run(worker: DeliveryWorker) -> DeliveryStats:
    async def go() -> DeliveryStats:
        try:
            return await worker.run_once()
        finally:
            await worker.aclose()

    return asyncio.run(go())


def worker(store: Store, notify: NotifyConfig, clock: FakeClock) -> DeliveryWorker:
    return DeliveryWorker(store, notify, clock=clock, rng=no_jitter)


def flaky(failures: int, status: int = 500, headers: dict[str, str] | None = None) -> Callable:
    """A receiver answering ``status`` to the first ``failures`` requests, then 200."""
    seen = Counter[str]()

    def handler(req: Request) -> Response:
        seen["n"] += 1
        if seen["n"] <= failures:
            return Response(status, headers or {}, b"not now")
        return Response(200, {}, b"ok")

    return handler


def accepted_ids(server: LoopbackHTTP, path: str, ok: set[str]) -> Counter[str]:
    return Counter(
        r.headers["webhook-id"] for r in server.requests_to(path) if r.headers["webhook-id"] in ok
    )


# --- channels --------------------------------------------------------------------------


def test_channels_follow_each_threshold() -> None:
    notify = notify_config(
        [webhook("http://127.0.0.1:9/a", name="low", min_score=0.5),
         webhook("http://127.0.0.1:9/b", name="high", min_score=0.8)],
        email_config(25, immediate_min_score=0.9),
    )  # fmt: skip
    channels = channels_for(notify)
    assert channels(0.55) == ["webhook:low", "digest"]
    assert channels(0.85) == ["webhook:low", "webhook:high", "digest"]
    assert channels(0.95) == ["webhook:low", "webhook:high", "email", "digest"]
    assert channels_for(notify_config([], email_config(25, digest=None)))(0.99) == []


def test_retry_schedule_is_standard_webhooks_with_jitter() -> None:
    assert [retry_delay(n, no_jitter) for n in range(1, 9)] == [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
        36000,
    ]
    assert retry_delay(3, lambda: 0.0) == pytest.approx(1800 * 0.9)
    assert retry_delay(3, lambda: 0.999999) == pytest.approx(1800 * 1.1, rel=1e-5)


# --- webhooks --------------------------------------------------------------------------


def test_receiver_down_then_up_each_alert_arrives_once_signed(
    store: Store, http_server: LoopbackHTTP
) -> None:
    http_server.routes["/hook"] = flaky(failures=6)
    notify = notify_config([webhook(http_server.url("/hook"))])
    add_alerts(store, notify, [scored("Daily NK", f"g{i}", 0.9) for i in range(3)])
    add_alerts(store, notify, [scored("Daily NK", "low", 0.3)])  # below every threshold
    clock = FakeClock()

    first = run(worker(store, notify, clock))
    assert first == DeliveryStats(sent=0, retried=3, dead=0)
    assert run(worker(store, notify, clock)) == DeliveryStats()  # nothing due yet
    clock.advance(5)
    second = run(worker(store, notify, clock))  # 3 more 500s
    assert second == DeliveryStats(sent=0, retried=3, dead=0)
    clock.advance(299)
    assert run(worker(store, notify, clock)) == DeliveryStats()  # 5 min not up
    clock.advance(1)
    assert run(worker(store, notify, clock)) == DeliveryStats(sent=3)
    clock.advance(86400)
    assert run(worker(store, notify, clock)) == DeliveryStats()

    requests = http_server.requests_to("/hook")
    assert len(requests) == 9
    by_id = Counter(r.headers["webhook-id"] for r in requests)
    assert len(by_id) == 3 and set(by_id.values()) == {3}  # same id on every retry
    ok = requests[6:]
    assert sorted(json.loads(r.body)["title"] for r in ok) == ["Story g0", "Story g1", "Story g2"]
    for r in ok:
        reference_verify(SECRET, r.headers, r.body, now=clock.t - 86400)
    assert store.counts()["deliveries_sent"] == 3


def test_retry_after_is_honoured(store: Store, http_server: LoopbackHTTP) -> None:
    http_server.routes["/hook"] = flaky(1, 429, {"Retry-After": "600"})
    notify = notify_config([webhook(http_server.url("/hook"))])
    add_alerts(store, notify, [scored("Daily NK", "g", 0.9)])
    clock = FakeClock()
    assert run(worker(store, notify, clock)).retried == 1
    clock.advance(5)  # the schedule alone would retry now
    assert run(worker(store, notify, clock)) == DeliveryStats()
    clock.advance(596)
    assert run(worker(store, notify, clock)).sent == 1
    assert len(http_server.requests_to("/hook")) == 2


def test_410_disables_the_endpoint_and_cancels_its_deliveries(
    store: Store, http_server: LoopbackHTTP, caplog: pytest.LogCaptureFixture
) -> None:
    http_server.routes["/gone"] = Response(410, {}, b"gone")
    http_server.routes["/fine"] = Response(200)
    notify = notify_config(
        [
            webhook(http_server.url("/gone"), name="old"),
            webhook(http_server.url("/fine"), name="new"),
        ]
    )
    add_alerts(store, notify, [scored("Daily NK", "a", 0.9)])
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="watchtower.notify")
    stats = run(worker(store, notify, clock))
    assert stats == DeliveryStats(sent=1, dead=1)
    assert store.disabled_channels() == {"webhook:old": "the receiver answered 410 Gone"}
    disabled_lines = [r for r in caplog.records if "410 Gone: endpoint disabled" in r.getMessage()]
    assert len(disabled_lines) == 1 and disabled_lines[0].levelno == logging.ERROR

    add_alerts(store, notify, [scored("Daily NK", "b", 0.9)])  # a new alert later
    clock.advance(3600)
    assert run(worker(store, notify, clock)) == DeliveryStats(sent=1)
    assert len(http_server.requests_to("/gone")) == 1  # never called again
    assert len(http_server.requests_to("/fine")) == 2
    counts = store.counts()
    assert counts["deliveries_cancelled"] == 1 and counts["deliveries_dead"] == 1


def test_redirect_is_not_followed_and_is_retried(store: Store, http_server: LoopbackHTTP) -> None:
    http_server.routes["/hook"] = Response(302, {"Location": http_server.url("/other")})
    http_server.routes["/other"] = Response(200)
    notify = notify_config([webhook(http_server.url("/hook"))])
    add_alerts(store, notify, [scored("Daily NK", "a", 0.9)])
    assert run(worker(store, notify, FakeClock())) == DeliveryStats(retried=1)
    assert http_server.requests_to("/other") == []
    assert store.dead_deliveries() == []  # not dead, waiting for its retry


def test_dead_letter_after_max_attempts_then_requeue(
    store: Store, http_server: LoopbackHTTP
) -> None:
    http_server.routes["/hook"] = Response(500)
    notify = notify_config([webhook(http_server.url("/hook"))], max_attempts=3)
    [alert_id] = add_alerts(store, notify, [scored("Daily NK", "a", 0.9)])
    clock = FakeClock()
    results = []
    for _ in range(4):
        results.append(run(worker(store, notify, clock)))
        clock.advance(36000)
    assert results == [DeliveryStats(retried=1), DeliveryStats(retried=1), DeliveryStats(dead=1),
                       DeliveryStats()]  # fmt: skip
    [(job, error)] = store.dead_deliveries()
    assert job.alert_id == alert_id and error == "webhook:ngo: HTTP 500"

    http_server.routes["/hook"] = Response(200)
    assert store.requeue(job.id, now=clock.dt) == 1
    assert run(worker(store, notify, clock)) == DeliveryStats(sent=1)
    ids = {r.headers["webhook-id"] for r in http_server.requests_to("/hook")}
    assert ids == {job.message_id}


def test_unconfigured_channel_stays_pending_and_is_logged_once(
    store: Store, http_server: LoopbackHTTP, caplog: pytest.LogCaptureFixture
) -> None:
    http_server.routes["/hook"] = Response(200)
    before = notify_config([webhook(http_server.url("/hook"), name="removed")])
    add_alerts(store, before, [scored("Daily NK", "a", 0.9)])
    after = notify_config([])
    w = DeliveryWorker(store, after, clock=FakeClock(), rng=no_jitter)

    async def twice() -> list[DeliveryStats]:
        return [await w.run_once(), await w.run_once()]

    caplog.set_level(logging.WARNING, logger="watchtower.notify")
    assert asyncio.run(twice()) == [DeliveryStats(), DeliveryStats()]
    lines = [r for r in caplog.records if "webhook:removed" in r.getMessage()]
    assert len(lines) == 1
    assert store.counts()["deliveries_pending"] == 1
    assert http_server.requests == []
    # put it back: it goes out
    assert run(worker(store, before, FakeClock())) == DeliveryStats(sent=1)


# --- immediate email ---------------------------------------------------------------------


def test_immediate_email_arrives_once_with_stable_message_id(
    store: Store, smtp_server: SMTPServer
) -> None:
    notify = notify_config([], email_config(smtp_server.port, immediate_min_score=0.8))
    add_alerts(store, notify, [scored("Daily NK", "hi", 0.95), scored("HRW", "lo", 0.6)])
    clock = FakeClock()
    assert run(worker(store, notify, clock)) == DeliveryStats(sent=1)
    assert run(worker(store, notify, clock)) == DeliveryStats()
    [msg] = smtp_server.messages
    assert msg["Subject"] == "[Watchtower] 0.95 Story hi"
    assert msg["Message-ID"].startswith("<msg_") and msg["Message-ID"].endswith("@example.org>")
    # the digest deliveries are left to the digest job
    assert store.counts()["deliveries_pending"] == 2


def test_mail_server_down_then_up_immediate_email_arrives_once(store: Store) -> None:
    server = SMTPServer()
    notify = notify_config([], email_config(server.port, immediate_min_score=0.8, digest=None))
    add_alerts(store, notify, [scored("Daily NK", "hi", 0.95)])
    clock = FakeClock()
    assert run(worker(store, notify, clock)) == DeliveryStats(retried=1)
    server.start()
    try:
        clock.advance(5)
        assert run(worker(store, notify, clock)) == DeliveryStats(sent=1)
        clock.advance(3600)
        assert run(worker(store, notify, clock)) == DeliveryStats()
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_drain_stops_when_nothing_is_due(store: Store, http_server: LoopbackHTTP) -> None:
    http_server.routes["/hook"] = flaky(1)
    notify = notify_config([webhook(http_server.url("/hook"))])
    add_alerts(store, notify, [scored("Daily NK", f"g{i}", 0.9) for i in range(60)])
    clock = FakeClock()

    async def go() -> DeliveryStats:
        async with DeliveryWorker(store, notify, clock=clock, rng=no_jitter) as w:
            return await w.drain(clock.t + 30)

    # more than one claim batch (50); the one failure waits for its retry
    assert asyncio.run(go()) == DeliveryStats(sent=59, retried=1)
