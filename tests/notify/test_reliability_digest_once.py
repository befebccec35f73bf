"""A slow mail server must not make a digest go out twice: the delivery worker's
resume pass, or a second digest run, leaves alone a digest this process is sending.
Real aiosmtpd server (slow to accept), real store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.notify.test_notify_support import (
    NOW,
    FakeClock,
    MailSink,
    SMTPServer,
    add_alerts,
    email_config,
    no_jitter,
    notify_config,
    scored,
)
from watchtower.notify.digest import DigestOutcome, send_digest
from watchtower.notify.inflight import InFlight
from watchtower.notify.outbox import DeliveryWorker
from watchtower.store import Store


class SlowAccept(MailSink):
    """Answers 250 to the message data only after 2 s."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(2.0)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.sink = SlowAccept()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_resume_pass_during_a_slow_digest_send_does_not_send_it_again(
    store: Store, slow_smtp: SMTPServer
) -> None:
    cfg = email_config(slow_smtp.port)
    notify = notify_config([], cfg)
    add_alerts(store, notify, [scored("Daily NK", "a", 0.8), scored("Daily NK", "b", 0.9)])

    async def go() -> DigestOutcome:
        job = asyncio.create_task(send_digest(store, cfg, now=NOW))
        await asyncio.sleep(0.5)  # the digest is now waiting for the server's 250
        worker = DeliveryWorker(store, notify, clock=FakeClock(), rng=no_jitter)
        try:
            await worker.run_once()  # the delivery worker's pass, every 5 s in the daemon
        finally:
            await worker.aclose()
        return await job

    outcome = asyncio.run(go())
    assert (outcome.sent, outcome.alert_count) == (True, 2)
    assert len(slow_smtp.messages) == 1
    assert store.counts()["deliveries_sent"] == 2


@pytest.mark.timeout(60)
def test_two_digest_runs_for_one_period_send_one_email(store: Store, slow_smtp: SMTPServer) -> None:
    """The catch-up run at start and the cron run can overlap on the same period."""
    cfg = email_config(slow_smtp.port)
    add_alerts(store, notify_config([], cfg), [scored("Daily NK", "a", 0.8)])

    async def go() -> list[DigestOutcome]:
        first = asyncio.create_task(send_digest(store, cfg, now=NOW))
        await asyncio.sleep(0.5)
        second = await send_digest(store, cfg, now=NOW)
        return [await first, second]

    first, second = asyncio.run(go())
    assert first.sent and not second.sent
    assert second.reason == "already being sent for this period"
    assert len(slow_smtp.messages) == 1


def test_in_flight_claims_are_exclusive_and_released() -> None:
    keys = InFlight()
    with keys.claim(1) as mine:
        assert mine and keys.busy(1)
        with keys.claim(1) as again:
            assert not again
        assert keys.busy(1)
    assert not keys.busy(1)
    with pytest.raises(RuntimeError), keys.claim(2):
        raise RuntimeError("send failed")
    assert not keys.busy(2)
