"""A feedback link that went through a real SMTP server records the verdict end to end."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
import jinja2
import pytest

from tests.web_fakes import KEY, T0, Clock, FakeReader, live_server, make_alert
from watchtower.notify.sanitize import clean_html
from watchtower.web.app import create_app
from watchtower.web.maillinks import install_filters
from watchtower.web.tokens import feedback_links


class _Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.raw.append(bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Sink]]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, sink
    finally:
        controller.stop()


def _mail(links: dict[str, str]) -> EmailMessage:
    html_env = jinja2.Environment(autoescape=True)
    text_env = jinja2.Environment(autoescape=False)
    for env in (html_env, text_env):
        install_filters(env)
    msg = EmailMessage()
    msg["Subject"] = "Watchtower digest"
    msg["From"] = "watchtower@example.org"
    msg["To"] = "analyst@example.org"
    text = "1. [0.72] Forced repatriation\n{{ l | feedback_links_text }}"
    html = "<h2>Forced repatriation</h2>{{ l | feedback_links_html }}"
    msg.set_content(text_env.from_string(text).render(l=links))
    msg.add_alternative(clean_html(html_env.from_string(html).render(l=links)), subtype="html")
    return msg


def test_emailed_not_relevant_link_get_then_post(smtp: tuple[int, _Sink]) -> None:
    port, sink = smtp
    reader = FakeReader([make_alert(3, "Forced repatriation"), make_alert(2, "Other")])
    app = create_app(reader, KEY, clock=Clock(T0))
    with live_server(app) as base:
        links = feedback_links(base, 3, KEY, T0)
        asyncio.run(aiosmtplib.send(_mail(links), hostname="127.0.0.1", port=port, timeout=10))
        [raw] = sink.raw
        received = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(received, EmailMessage)
        text_part = received.get_body(("plain",))
        html_part = received.get_body(("html",))
        assert text_part is not None and html_part is not None
        from_text = re.search(r"Not relevant: (\S+)", text_part.get_content())
        from_html = re.search(r'<a href="([^"]+)"[^>]*>Not relevant</a>', html_part.get_content())
        assert from_text and from_html
        assert from_text.group(1) == from_html.group(1) == links["not_relevant"]

        with httpx.Client() as browser:
            confirm = browser.get(from_html.group(1))
            assert confirm.status_code == 200 and reader.feedback_calls == []
            csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', confirm.text)
            assert csrf
            done = browser.post(from_html.group(1), data={"csrf": csrf.group(1)})
            assert done.status_code == 200
            alerts = browser.get(base + "/api/alerts").json()
        assert [(a["alert_id"], a["feedback"]) for a in alerts] == [(3, "not-relevant"), (2, None)]
