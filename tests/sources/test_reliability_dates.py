"""Extreme dates (31 Dec 9999, year 1, offsets that overflow): parsed, stored, rendered
and mailed without an error, with real loopback HTTP and SMTP servers."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.test_e2e_run_once import RELEVANT, watchtower
from tests.notify.test_notify_support import NOW, SMTPServer, email_config, smtp_server
from tests.support import LoopbackHTTP, Response, shipped_baseline_yaml
from watchtower.models import Explanation, FetchResult, Match
from watchtower.notify.digest import period_label, render_digest
from watchtower.notify.email import render_alert_email, send_message
from watchtower.notify.render import card, format_time
from watchtower.sources.feed import parse_feed
from watchtower.sources.jsonfeed import parse_json_feed
from watchtower.store import AlertView, SourceLink
from watchtower.timeutil import SAFE_MAX, SAFE_MIN, format_in_zone, representable

__all__ = ["smtp_server"]

FAR_DATES = [
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "31 Dec 9999",
    "Fri, 31 Dec 9999 23:59:59 -1200",
    "Mon, 01 Jan 0001 00:00:00 GMT",
]
JSON_DATES = ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+00:00"]


def far_rss() -> bytes:
    title, summary = RELEVANT[0]
    items = [
        f"<item><title>{title} ({i})</title><link>https://news.example.org/far/{i}</link>"
        f"<guid>far-{i}</guid><description>{summary}</description>"
        f"<pubDate>{date}</pubDate></item>"
        for i, date in enumerate(FAR_DATES)
    ]
    items.append(
        "<item><title>An ordinary item</title><guid>ok</guid>"
        "<pubDate>Mon, 16 Nov 2026 08:00:00 GMT</pubDate></item>"
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>far</title>'
        f"<link>https://news.example.org/</link>{''.join(items)}</channel></rss>"
    ).encode()


def far_json() -> bytes:
    items = [
        {"id": f"j{i}", "title": f"Item {i}", "content_text": "text", "date_published": d}
        for i, d in enumerate(JSON_DATES)
    ]
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()


def fetched(server: LoopbackHTTP, path: str) -> FetchResult:
    response = httpx.get(server.url(path))
    return FetchResult(
        url=server.url(path),
        status=response.status_code,
        body=response.content,
        headers={k.lower(): v for k, v in response.headers.items()},
    )


def test_safe_range_is_representable_in_every_zone() -> None:
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "Asia/Tokyo", "America/New_York"):
        for moment in (SAFE_MIN, SAFE_MAX):
            assert format_in_zone(moment, ZoneInfo(zone))
    assert representable(datetime(9999, 12, 31, 23, tzinfo=UTC)) is None
    assert representable(datetime(1, 1, 1, tzinfo=UTC)) is None
    assert representable(datetime(2026, 5, 5)) == datetime(2026, 5, 5, tzinfo=UTC)


def test_far_dates_in_a_loopback_feed_are_dropped_with_one_log_line(
    http_server: LoopbackHTTP, caplog: pytest.LogCaptureFixture
) -> None:
    http_server.routes["/far.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, far_rss()
    )
    http_server.routes["/far.json"] = Response(
        200, {"Content-Type": "application/feed+json"}, far_json()
    )
    with caplog.at_level(logging.WARNING):
        entries = parse_feed(fetched(http_server, "/far.xml"), "Far RSS")
        items = parse_json_feed(fetched(http_server, "/far.json"), "Far JSON")
    assert len(entries) == len(FAR_DATES) + 1
    assert [e.published for e in entries[:-1]] == [None] * len(FAR_DATES)
    assert entries[-1].published == datetime(2026, 11, 16, 8, tzinfo=UTC)
    assert [i.published for i in items] == [None] * len(JSON_DATES)
    lines = [r.getMessage() for r in caplog.records if "time zone can show" in r.getMessage()]
    assert len(lines) == 2 and "Far RSS" in lines[0] and "Far JSON" in lines[1]

    zone = ZoneInfo("Asia/Tokyo")
    for entry in entries:
        view = alert_view(published=entry.published, title=entry.title)
        assert render_alert_email(view, email_config(25, timezone="Asia/Tokyo"), "msg_far")
        assert card(view, zone).published in ("unknown", "2026-11-16 17:00 JST")


def alert_view(published: datetime | None, title: str = "Far story") -> AlertView:
    return AlertView(
        id=1,
        story_id=1,
        created_at=NOW,
        score=0.9,
        title=title,
        url="https://news.example/far",
        source="Far RSS",
        published=published,
        sources=(SourceLink("Far RSS", title, "https://news.example/far", published),),
        explanation=Explanation(matches=(Match("entity", "North Korea", 0.4, 2),)),
        diff=(),
    )


STORED = [
    (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "Asia/Tokyo", "9999-12-31 23:59 UTC"),
    (datetime(1, 1, 1, 0, 30, tzinfo=UTC), "America/New_York", "1-01-01 00:30 UTC"),
    (datetime(2026, 5, 5, 7, tzinfo=UTC), "Asia/Tokyo", "2026-05-05 16:00 JST"),
]


@pytest.mark.parametrize(("published", "zone", "shown"), STORED)
def test_stored_far_dates_render_and_mail(
    published: datetime, zone: str, shown: str, smtp_server: SMTPServer
) -> None:
    """Rows stored before dates were checked still render: in UTC when the zone cannot."""
    cfg = email_config(smtp_server.port, timezone=zone)
    assert format_time(published, ZoneInfo(zone)) == shown
    alert = render_alert_email(alert_view(published), cfg, "msg_far")
    digest = render_digest([alert_view(published)], cfg, period_label(NOW.isoformat(), cfg), "d1")
    for message in (alert, digest):
        asyncio.run(send_message(cfg.smtp, message))
    assert len(smtp_server.messages) == 2


def test_period_label_of_an_unrepresentable_key_is_the_key() -> None:
    cfg = email_config(25, timezone="Asia/Tokyo")
    assert period_label("9999-12-31T23:59:00+00:00", cfg) == "9999-12-31T23:59:00+00:00"


@pytest.mark.timeout(120)
def test_far_dated_item_through_run_once_mail_and_digest_preview(
    http_server: LoopbackHTTP, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """The whole path as a user meets it: poll, immediate email, digest preview and send."""
    http_server.routes["/far.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, far_rss()
    )
    config = tmp_path / "watchtower.yaml"
    config.write_text(
        "\n".join(
            [
                f"store: sqlite:///{tmp_path}/watchtower.db",
                shipped_baseline_yaml(tmp_path),
                "fetch: {allow_private_addresses: true, timeout: 10s}",
                "sources:",
                f"  - {{name: Far, feed: '{http_server.url('/far.xml')}', every: 30m}}",
                "notify:",
                "  email:",
                f"    smtp: {{host: 127.0.0.1, port: {smtp_server.port}, timeout: 5s}}",
                "    from: watchtower@example.org",
                "    to: [analyst@example.org]",
                "    immediate_min_score: 0.01",
                '    digest: "0 7 * * *"',
                "    timezone: Asia/Tokyo",
            ]
        )
        + "\n"
    )
    run = watchtower("run", "--once", "--config", str(config))
    assert run.returncode == 0, run.stderr
    immediate = len(smtp_server.messages)
    assert immediate >= 1
    preview = watchtower("digest", "--preview", "--config", str(config))
    assert preview.returncode == 0, preview.stderr
    assert "Traceback" not in preview.stderr
    sent = watchtower("digest", "--send", "--config", str(config))
    assert sent.returncode == 0, sent.stderr
    assert len(smtp_server.messages) == immediate + 1
