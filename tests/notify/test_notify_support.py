"""Shared parts for the notify and delivery tests (no tests here).

A reference Standard Webhooks verifier written from the spec, a fake clock, a real
aiosmtpd server on 127.0.0.1, config builders and a helper that stores alerts through
the real ``Store.record_poll``.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import socket
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from watchtower.config import EmailConfig, NotifyConfig, WebhookConfig
from watchtower.models import Entry, Explanation, FetchState, Match, Score, ScoredEntry
from watchtower.store import Store

NOW = datetime(2026, 5, 5, 9, 30, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"watchtower-test-key-0123456789ab").decode()
SOURCES = [
    ("Daily NK", "feed", "http://127.0.0.1:9/dailynk.xml"),
    ("HRW", "feed", "http://127.0.0.1:9/hrw.xml"),
    ("UN page", "page", "http://127.0.0.1:9/un.html"),
]


# --- Standard Webhooks reference verifier (written from the spec, not from our code) ----


class BadSignature(Exception):
    pass


def reference_verify(
    secret: str, headers: dict[str, str], body: bytes, *, now: float, tolerance: int = 300
) -> None:
    """Verify like a receiver following https://www.standardwebhooks.com/ would."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(now - int(timestamp)) > tolerance:
        raise BadSignature("timestamp outside tolerance")
    key = (
        base64.b64decode(secret.removeprefix("whsec_"))
        if secret.startswith("whsec_")
        else secret.encode()
    )
    to_sign = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest())
    for candidate in headers["webhook-signature"].split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return
    raise BadSignature("no matching signature")


# --- clock -------------------------------------------------------------------------------


@dataclass
class FakeClock:
    t: float = NOW.timestamp()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    @property
    def dt(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)


def no_jitter() -> float:
    return 0.5  # the middle of the jitter band: exactly the schedule


# --- config ------------------------------------------------------------------------------


def webhook(url: str, *, name: str = "ngo", min_score: float = 0.5, **extra: Any) -> WebhookConfig:
    return WebhookConfig.model_validate(
        {"url": url, "secret": SECRET, "min_score": min_score, "name": name, **extra}
    )


def email_config(port: int, **extra: Any) -> EmailConfig:
    data: dict[str, Any] = {
        "smtp": {"host": "127.0.0.1", "port": port, "timeout": "5s"},
        "from": "watchtower@example.org",
        "to": ["analyst@example.org"],
        "digest": "0 7 * * *",
        "timezone": "UTC",
    }
    data.update(extra)
    return EmailConfig.model_validate(data)


def notify_config(
    webhooks: Sequence[WebhookConfig] = (), email: EmailConfig | None = None, **extra: Any
) -> NotifyConfig:
    return NotifyConfig(webhooks=list(webhooks), email=email, **extra)


# --- store -------------------------------------------------------------------------------


def open_store(url: str) -> Store:
    store = Store.open(url)
    store.sync_sources(SOURCES)
    return store


def scored(
    source: str,
    guid: str,
    value: float,
    *,
    title: str | None = None,
    url: str | None = None,
    signature: bytes | None = None,
    diff: tuple[str, ...] = (),
) -> ScoredEntry:
    explanation = Explanation(
        matches=(
            Match("entity", "North Korea", 0.4, 2),
            Match("term", "forced repatriation", 0.3),
        ),
        nearest_seed="hrw-2023-repatriation.txt",
        seed_similarity=0.61,
    )
    entry = Entry(
        source=source,
        guid=guid,
        title=title if title is not None else f"Story {guid}",
        url=url if url is not None else f"https://news.example/{guid}",
        summary="China returned escapees to North Korea.",
        published=NOW - timedelta(hours=2),
        kind="page" if diff else "feed",
        diff=diff,
    )
    sig = signature if signature is not None else f"sig-{guid}".encode()
    return ScoredEntry(entry, Score(value, explanation), sig)


def add_alerts(
    store: Store,
    notify: NotifyConfig,
    entries: Sequence[ScoredEntry],
    *,
    source: str = "Daily NK",
    now: datetime = NOW,
) -> tuple[int, ...]:
    from watchtower.notify.outbox import channels_for

    outcome = store.record_poll(
        source, FetchState(), entries, threshold=0.5, channels=channels_for(notify), now=now
    )
    return outcome.new_alerts


# --- SMTP --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MailSink:
    """aiosmtpd handler that keeps every message it accepted."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        with self.lock:
            self.messages.append(msg)
        return "250 Message accepted for delivery"


class SMTPServer:
    """A real aiosmtpd SMTP server on 127.0.0.1:<port>, startable and stoppable."""

    def __init__(self, port: int | None = None, **controller: Any) -> None:
        self.port = port or free_port()
        self.sink = MailSink()
        self._controller_args = controller
        self._controller: Any = None

    def start(self) -> SMTPServer:
        from aiosmtpd.controller import Controller

        self._controller = Controller(
            self.sink, hostname="127.0.0.1", port=self.port, **self._controller_args
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        # aiosmtpd leaves the transports of sessions the client dropped (a refused
        # STARTTLS, a 530) to the garbage collector; collect them here, inside this
        # test, rather than let their ResourceWarning land in whichever test runs next.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()

    @property
    def messages(self) -> list[EmailMessage]:
        with self.sink.lock:
            return list(self.sink.messages)


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer().start()
    try:
        yield server
    finally:
        server.stop()
