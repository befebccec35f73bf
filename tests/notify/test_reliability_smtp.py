"""The SMTP timeout is a deadline for the whole conversation of one message, not per
reply. A real aiosmtpd server whose every reply is slow (but inside the per-reply
timeout) must fail at the deadline; one that is merely slowish still delivers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.notify.test_notify_support import MailSink, SMTPServer, email_config
from watchtower.errors import DeliveryError, PermanentDeliveryError
from watchtower.notify.digest import render_digest
from watchtower.notify.email import send_message


class SlowSink(MailSink):
    """Accepts everything, but waits ``delay`` seconds before each reply."""

    delay = 0.6

    async def handle_EHLO(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        await asyncio.sleep(self.delay)
        session.host_name = hostname
        return responses

    async def handle_MAIL(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.delay)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def slow_server(delay: float) -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.sink = SlowSink()
    server.sink.delay = delay  # type: ignore[attr-defined]
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def very_slow() -> Iterator[SMTPServer]:
    yield from slow_server(0.6)


@pytest.fixture
def slowish() -> Iterator[SMTPServer]:
    yield from slow_server(0.1)


def send(server: SMTPServer, timeout: str) -> float:
    cfg = email_config(
        server.port, smtp={"host": "127.0.0.1", "port": server.port, "timeout": timeout}
    )
    message = render_digest([], cfg, "today", "digest_slow")
    started = time.monotonic()
    try:
        asyncio.run(send_message(cfg.smtp, message))
    finally:
        elapsed = time.monotonic() - started
    return elapsed


@pytest.mark.timeout(30)
def test_slow_replies_fail_at_the_total_deadline(very_slow: SMTPServer) -> None:
    """Each reply takes 0.6 s (under the 1.5 s timeout); four of them take 2.4 s."""
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        send(very_slow, "1.5s")
    elapsed = time.monotonic() - started
    assert not isinstance(info.value, PermanentDeliveryError)
    assert "1.5s" in info.value.reason
    assert 1.4 <= elapsed < 2.2, elapsed


@pytest.mark.timeout(30)
def test_a_conversation_inside_the_deadline_still_delivers(slowish: SMTPServer) -> None:
    elapsed = send(slowish, "3s")
    assert elapsed < 3
    [message] = slowish.messages
    assert message["Message-ID"] == "<digest_slow@example.org>"
