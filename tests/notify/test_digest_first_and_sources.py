"""The first digest after email is configured covers its period; a "Sources" section
lists the source health events; ``--preview --html FILE`` writes the HTML part."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from tests.e2e.test_e2e_run_once import watchtower
from tests.notify.test_delivery_digest import titles
from tests.notify.test_notify_support import (
    NOW,
    SMTPServer,
    add_alerts,
    email_config,
    notify_config,
    open_store,
    scored,
    smtp_server,
)
from tests.support import shipped_baseline_yaml
from watchtower import health
from watchtower.notify.digest import send_digest
from watchtower.store import Store

__all__ = ["smtp_server"]


def test_alerts_stored_before_email_was_configured_reach_the_first_digest(
    store: Store, smtp_server: SMTPServer
) -> None:
    add_alerts(store, notify_config(), [scored("Daily NK", "a", 0.9), scored("HRW", "b", 0.7)])
    add_alerts(store, notify_config(), [scored("HRW", "old", 0.8)], now=NOW - timedelta(days=3))
    cfg = email_config(smtp_server.port)

    preview = asyncio.run(send_digest(store, cfg, now=NOW, preview=True))
    assert preview.alert_count == 2
    assert preview.message is not None
    assert "Nothing new since the last digest" not in preview.message.as_string()

    sent = asyncio.run(send_digest(store, cfg, now=NOW))
    assert (sent.sent, sent.alert_count) == (True, 2), "the alerts of the period, not older"
    assert titles(smtp_server.messages[0]) == ["Story a", "Story b"]
    nxt = asyncio.run(send_digest(store, cfg, now=NOW + timedelta(days=1)))
    assert nxt.reason == "nothing new", "each alert in one digest only"


def test_digest_has_a_sources_section_with_the_health_events(
    store: Store, smtp_server: SMTPServer
) -> None:
    cfg = email_config(smtp_server.port)
    notify = notify_config([], cfg)
    add_alerts(store, notify, [scored("Daily NK", "a", 0.9)])
    store.record_failure(
        "HRW", "HTTP 404 Not Found", now=NOW - timedelta(hours=2), next_due_at=None
    )
    limits = {"HRW": health.Limits(timedelta(hours=1), timedelta(days=14))}
    changes = health.plan_changes(store.health_inputs(["HRW"]), limits, NOW)
    store.apply_health(changes, health.event_channels(notify), NOW)

    sent = asyncio.run(send_digest(store, cfg, now=NOW + timedelta(minutes=1)))
    assert sent.sent and sent.message is not None
    text = sent.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = sent.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Sources\n-------" in text and "HRW: failing since" in text
    assert "HTTP 404 Not Found" in text
    assert "<h2>Sources</h2>" in html and "HRW: failing since" in html


def test_preview_html_writes_the_html_part(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/watchtower.db"
    with open_store(url) as store:
        add_alerts(store, notify_config(), [scored("Daily NK", "a", 0.9)], now=NOW)
    config = tmp_path / "watchtower.yaml"
    config.write_text(
        f"store: {url}\n{shipped_baseline_yaml(tmp_path)}\n"
        "sources:\n  - {name: Daily NK, feed: 'http://127.0.0.1:9/dailynk.xml'}\n"
        "notify:\n  email: {from: watchtower@example.org, to: [analyst@example.org],"
        " digest: '* * * * *'}\n"
    )
    out = tmp_path / "digest.html"
    result = watchtower("digest", "--preview", "--html", str(out), "--config", str(config))
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") or "<html" in page[:200].lower()
    assert "Content-Transfer-Encoding" not in page and "=3D" not in page
    assert str(out) in result.stdout
