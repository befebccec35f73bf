"""The digest with a real aiosmtpd server and the real store: once per period, across
mail outages, crashes and restarts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.message import EmailMessage

import pytest
from bs4 import BeautifulSoup

from tests.notify.test_notify_support import (
    NOW,
    FakeClock,
    SMTPServer,
    add_alerts,
    email_config,
    no_jitter,
    notify_config,
    open_store,
    scored,
    smtp_server,
)
from watchtower.config import EmailConfig
from watchtower.errors import StoreError
from watchtower.notify import digest as digest_module
from watchtower.notify.digest import DigestOutcome, send_digest
from watchtower.notify.outbox import DeliveryWorker
from watchtower.store import Store

__all__ = ["smtp_server"]

PERIOD = "2026-05-05T07:00:00+00:00"  # the 07:00 UTC fire time before NOW (09:30)


def send(store: Store, cfg: EmailConfig, **kw: object) -> DigestOutcome:
    kw.setdefault("now", NOW)
    return asyncio.run(send_digest(store, cfg, **kw))  # type: ignore[arg-type]


def titles(msg: EmailMessage) -> list[str]:
    html = msg.get_body(("html",))
    assert isinstance(html, EmailMessage)
    soup = BeautifulSoup(html.get_content(), "html.parser")
    return [a.get_text() for a in soup.select("div.alert h2 a")]


def test_one_digest_per_period_with_every_pending_alert(
    store: Store, smtp_server: SMTPServer
) -> None:
    cfg = email_config(smtp_server.port)
    notify = notify_config([], cfg)
    add_alerts(store, notify, [scored("Daily NK", "a", 0.7), scored("Daily NK", "b", 0.95)])
    add_alerts(store, notify, [scored("HRW", "c", 0.8)], source="HRW")
    add_alerts(store, notify, [scored("HRW", "a-hrw", 0.6, signature=b"sig-a")], source="HRW")

    first = send(store, cfg)
    assert (first.sent, first.alert_count, first.period, first.reason) == (True, 3, PERIOD, "sent")
    second = send(store, cfg, now=NOW + timedelta(hours=3))
    assert (second.sent, second.reason) == (False, "already sent for this period")
    [msg] = smtp_server.messages
    assert titles(msg) == ["Story b", "Story c", "Story a"]  # ranked by score
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "https://news.example/a-hrw" in html  # the second outlet of story a is listed
    assert store.counts()["deliveries_sent"] == 3

    # a new alert after the digest goes into the next period's digest only
    add_alerts(store, notify, [scored("Daily NK", "d", 0.9)], now=NOW + timedelta(hours=1))
    third = send(store, cfg, now=NOW + timedelta(days=1))
    assert (third.sent, third.alert_count) == (True, 1)
    assert titles(smtp_server.messages[1]) == ["Story d"]


def test_empty_period_sends_nothing_unless_configured(
    store: Store, smtp_server: SMTPServer
) -> None:
    cfg = email_config(smtp_server.port)
    assert send(store, cfg).reason == "nothing new"
    assert smtp_server.messages == []
    loud = email_config(smtp_server.port, send_empty_digest=True)
    out = send(store, loud)
    assert (out.sent, out.alert_count) == (True, 0)
    assert send(store, loud).reason == "already sent for this period"
    assert len(smtp_server.messages) == 1


def test_mail_server_down_then_up_the_digest_arrives_once(store: Store) -> None:
    server = SMTPServer()  # not started: connections are refused
    cfg = email_config(server.port)
    add_alerts(store, notify_config([], cfg), [scored("Daily NK", "a", 0.9)])
    down = send(store, cfg)
    assert not down.sent and down.reason.startswith("not sent:") and "will retry" in down.reason
    server.start()
    try:
        up = send(store, cfg, now=NOW + timedelta(minutes=10))
        assert up.sent and up.alert_count == 1
        assert send(store, cfg, now=NOW + timedelta(minutes=20)).reason == (
            "already sent for this period"
        )
        [msg] = server.messages
        assert titles(msg) == ["Story a"]
    finally:
        server.stop()


def test_crash_after_sending_resends_once_with_the_same_message_id(
    store_url: str, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = email_config(smtp_server.port)
    with open_store(store_url) as store:
        add_alerts(store, notify_config([], cfg), [scored("Daily NK", "a", 0.9)])

        def crash(*args: object) -> None:
            raise StoreError("store: simulated crash before marking the digest sent")

        monkeypatch.setattr(digest_module, "_finish", crash)
        with pytest.raises(StoreError):
            send(store, cfg)
        monkeypatch.undo()
    assert len(smtp_server.messages) == 1  # the server has it; we never recorded that

    with open_store(store_url) as store:  # restart
        again = send(store, cfg, now=NOW + timedelta(minutes=1))
        assert again.sent and again.alert_count == 1
        assert send(store, cfg, now=NOW + timedelta(minutes=2)).reason == (
            "already sent for this period"
        )
    first, second = smtp_server.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert titles(first) == titles(second) == ["Story a"]


def test_preview_renders_without_sending_or_changing_state(
    store: Store, smtp_server: SMTPServer
) -> None:
    cfg = email_config(smtp_server.port)
    add_alerts(store, notify_config([], cfg), [scored("Daily NK", "a", 0.9)])
    before = store.counts()
    out = send(store, cfg, preview=True)
    assert (out.sent, out.alert_count, out.reason) == (False, 1, "preview")
    assert out.message is not None and titles(out.message) == ["Story a"]
    assert store.counts() == before and smtp_server.messages == []
    assert send(store, cfg).sent  # the real send still happens


def test_explicit_period_and_a_digest_left_half_sent_by_an_earlier_period(
    store: Store,
) -> None:
    server = SMTPServer()
    cfg = email_config(server.port)
    notify = notify_config([], cfg)
    add_alerts(store, notify, [scored("Daily NK", "a", 0.9)])
    assert not send(store, cfg, period="2026-05-04T07:00:00+00:00").sent  # server down
    add_alerts(store, notify, [scored("Daily NK", "b", 0.8)])
    server.start()
    try:
        out = send(store, cfg)  # today's: first finishes yesterday's, then sends its own
        assert out.sent and out.alert_count == 1
        assert [titles(m) for m in server.messages] == [["Story a"], ["Story b"]]
    finally:
        server.stop()


def test_worker_resends_a_half_sent_digest(store: Store) -> None:
    server = SMTPServer()
    cfg = email_config(server.port)
    notify = notify_config([], cfg)
    add_alerts(store, notify, [scored("Daily NK", "a", 0.9)])
    assert not send(store, cfg).sent
    clock = FakeClock()

    async def pass_once(w: DeliveryWorker) -> None:
        await w.run_once()

    w = DeliveryWorker(store, notify, clock=clock, rng=no_jitter)
    asyncio.run(pass_once(w))  # still down: backs off
    server.start()
    try:
        asyncio.run(pass_once(w))  # within its back-off: no try
        assert server.messages == []
        clock.advance(5)
        asyncio.run(pass_once(w))
        assert len(server.messages) == 1
        asyncio.run(pass_once(w))
        assert len(server.messages) == 1
        assert send(store, cfg).reason == "already sent for this period"
    finally:
        server.stop()
