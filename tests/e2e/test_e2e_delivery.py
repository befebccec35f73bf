"""End to end: `run --once` delivers each alert once, signed; `digest --send` once a period."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bs4 import BeautifulSoup

from tests.e2e.test_e2e_run_once import IRRELEVANT, RELEVANT, rss, watchtower
from tests.notify.test_notify_support import SECRET, SMTPServer, reference_verify, smtp_server
from tests.support import LoopbackHTTP, Response, shipped_baseline_yaml

__all__ = ["smtp_server"]

SECOND_OUTLET = [
    (
        "China forcibly repatriates dozens of North Korean defectors, rights groups say",
        RELEVANT[0][1],
    )
]


def write_config(tmp_path: Path, server: LoopbackHTTP, smtp: SMTPServer) -> Path:
    text = f"""
store: sqlite:///{tmp_path}/watchtower.db
{shipped_baseline_yaml(tmp_path)}
fetch: {{allow_private_addresses: true, timeout: 10s}}
sources:
  - {{name: Outlet A, feed: '{server.url("/a.xml")}'}}
  - {{name: Outlet B, feed: '{server.url("/b.xml")}'}}
notify:
  webhooks:
    - {{url: '{server.url("/hook-all")}', secret: '{SECRET}', min_score: 0.0}}
    - {{url: '{server.url("/hook-high")}', secret: plain-secret, min_score: 0.99}}
  email:
    smtp: {{host: 127.0.0.1, port: {smtp.port}}}
    from: watchtower@example.org
    to: [analyst@example.org]
    immediate_min_score: 0.5
    digest: "0 7 * * *"
"""
    path = tmp_path / "watchtower.yaml"
    path.write_text(text)
    return path


def test_run_once_delivers_every_alert_once_signed_and_digest_once(
    http_server: LoopbackHTTP, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    http_server.routes["/a.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT + IRRELEVANT, "a")
    )
    http_server.routes["/b.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(SECOND_OUTLET, "b")
    )
    ok = lambda req: Response(200, {}, b"")  # noqa: E731
    http_server.routes["/hook-all"] = ok
    http_server.routes["/hook-high"] = ok
    config = write_config(tmp_path, http_server, smtp_server)

    first = watchtower("run", "--once", "--config", str(config))
    assert first.returncode == 0, first.stderr

    from watchtower.store import Store

    with Store.open(f"sqlite:///{tmp_path}/watchtower.db") as store:
        alerts = store.list_alerts(limit=50)
    assert {a.title for a in alerts} >= {RELEVANT[1][0]}
    story = [a for a in alerts if "repatriates" in a.title]
    assert len(story) == 1, "one story from two outlets is one alert"
    assert {link.source for link in story[0].sources} == {"Outlet A", "Outlet B"}

    received = http_server.requests_to("/hook-all")
    assert sorted(json.loads(r.body)["alert_id"] for r in received) == sorted(a.id for a in alerts)
    for req in received:
        reference_verify(SECRET, req.headers, req.body, now=time.time())
        body = json.loads(req.body)
        assert body["type"] == "alert" and body["explanation"]
    high = [a for a in alerts if a.score >= 0.99]
    assert len(http_server.requests_to("/hook-high")) == len(high)
    immediate = [a for a in alerts if a.score >= 0.5]
    assert len(smtp_server.messages) == len(immediate)

    second = watchtower("run", "--once", "--config", str(config))
    assert second.returncode == 0, second.stderr
    assert len(http_server.requests_to("/hook-all")) == len(received)
    assert len(smtp_server.messages) == len(immediate)

    sent = watchtower("digest", "--send", "--config", str(config))
    assert sent.returncode == 0, sent.stderr
    digests = smtp_server.messages[len(immediate) :]
    assert len(digests) == 1
    html = digests[0].get_body(("html",))
    assert html is not None
    soup = BeautifulSoup(html.get_content(), "html.parser")
    text = soup.get_text(" ")
    for alert in alerts:
        assert alert.title in text
    assert not soup.find_all("script")
    assert all(a["href"].startswith(("http://", "https://")) for a in soup.find_all("a"))

    again = watchtower("digest", "--send", "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert len(smtp_server.messages) == len(immediate) + 1


def test_failed_deliveries_are_listed_and_requeued(
    http_server: LoopbackHTTP, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    http_server.routes["/a.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT, "a")
    )
    http_server.routes["/b.xml"] = Response(404, {}, b"")
    http_server.routes["/hook-all"] = lambda req: Response(410, {}, b"gone")
    http_server.routes["/hook-high"] = lambda req: Response(200, {}, b"")
    config = write_config(tmp_path, http_server, smtp_server)
    assert watchtower("run", "--once", "--config", str(config)).returncode == 0

    failed = watchtower("alerts", "--failed", "--config", str(config))
    assert failed.returncode == 0
    assert "webhook:" in failed.stdout and "410" in failed.stdout
    retried = watchtower("deliveries", "retry", "--all", "--config", str(config))
    assert retried.returncode == 0, retried.stderr
    assert "re-queued" in retried.stdout
    missing = watchtower("deliveries", "retry", "999999", "--config", str(config))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
