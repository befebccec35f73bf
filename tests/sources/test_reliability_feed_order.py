"""Feeds longer than the entry cap keep their newest items, whatever their order."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_e2e_run_once import watchtower
from tests.support import LoopbackHTTP, Response, shipped_baseline_yaml
from watchtower.models import FetchResult
from watchtower.sources.feed import MAX_ENTRIES, parse_feed
from watchtower.sources.jsonfeed import MAX_ITEMS, parse_json_feed
from watchtower.sources.normalize import newest_indices

START = datetime(2026, 1, 1, tzinfo=UTC)


def rss(count: int, *, newest_first: bool = False, dated: bool = True) -> bytes:
    order = range(count - 1, -1, -1) if newest_first else range(count)
    items = []
    for i in order:
        when = (START + timedelta(hours=i)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        date = f"<pubDate>{when}</pubDate>" if dated else ""
        items.append(
            f"<item><title>Story {i}</title><link>https://news.example.org/s/{i}</link>"
            f"<guid isPermaLink='false'>s-{i}</guid>{date}</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://news.example.org/</link>{''.join(items)}</channel></rss>"
    ).encode()


def fetched(server: LoopbackHTTP, path: str) -> FetchResult:
    response = httpx.get(server.url(path))
    return FetchResult(
        url=server.url(path),
        status=response.status_code,
        body=response.content,
        headers={k.lower(): v for k, v in response.headers.items()},
    )


def guids(server: LoopbackHTTP, path: str, source: str) -> set[str]:
    return {e.guid for e in parse_feed(fetched(server, path), source)}


@pytest.mark.parametrize(("newest_first", "dated"), [(False, True), (True, True), (False, False)])
def test_600_item_feed_keeps_the_newest_500(
    http_server: LoopbackHTTP, newest_first: bool, dated: bool
) -> None:
    body = rss(600, newest_first=newest_first, dated=dated)
    http_server.routes["/long.xml"] = Response(200, {"Content-Type": "application/rss+xml"}, body)
    kept = guids(http_server, "/long.xml", f"long-{uuid.uuid4().hex}")
    assert len(kept) == MAX_ENTRIES
    if dated or not newest_first:
        assert kept == {f"s-{i}" for i in range(100, 600)}


def test_truncation_is_logged_once_per_source(
    http_server: LoopbackHTTP, caplog: pytest.LogCaptureFixture
) -> None:
    http_server.routes["/long.xml"] = Response(200, {}, rss(600))
    name, other = f"once-{uuid.uuid4().hex}", f"other-{uuid.uuid4().hex}"
    with caplog.at_level(logging.WARNING):
        for source in (name, name, name, other):
            guids(http_server, "/long.xml", source)
    lines = [r.getMessage() for r in caplog.records if "keeping the newest" in r.getMessage()]
    assert len(lines) == 2
    assert name in lines[0] and other in lines[1]


def test_json_feed_over_its_cap_keeps_the_newest(http_server: LoopbackHTTP) -> None:
    items = [
        {
            "id": f"j{i}",
            "title": f"Item {i}",
            "content_text": "text",
            "date_published": (START + timedelta(minutes=i)).isoformat(),
        }
        for i in range(MAX_ITEMS + 100)
    ]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()
    http_server.routes["/long.json"] = Response(
        200, {"Content-Type": "application/feed+json"}, body
    )
    entries = parse_json_feed(fetched(http_server, "/long.json"), f"json-{uuid.uuid4().hex}")
    assert len(entries) == MAX_ITEMS
    assert entries[0].guid == "j100" and entries[-1].guid == f"j{MAX_ITEMS + 99}"


def test_newest_indices_mixes_dated_and_undated_items() -> None:
    dates = [START, None, START + timedelta(days=2), None, START + timedelta(days=1)]
    assert newest_indices(dates, 2) == [2, 4]
    assert newest_indices(dates, 4) == [0, 2, 3, 4]
    assert newest_indices(dates, 10) == [0, 1, 2, 3, 4]


@pytest.mark.timeout(120)
def test_run_once_stores_the_newest_items_of_an_oldest_first_feed(
    http_server: LoopbackHTTP, tmp_path: Path
) -> None:
    http_server.routes["/long.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(600)
    )
    config = tmp_path / "watchtower.yaml"
    config.write_text(
        "\n".join(
            [
                f"store: sqlite:///{tmp_path}/watchtower.db",
                shipped_baseline_yaml(tmp_path),
                "fetch: {allow_private_addresses: true, timeout: 10s}",
                "sources:",
                f"  - {{name: Long, feed: '{http_server.url('/long.xml')}', every: 30m}}",
            ]
        )
        + "\n"
    )
    run = watchtower("run", "--once", "--config", str(config))
    assert run.returncode == 0, run.stderr
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path}/watchtower.db")
    with engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT guid FROM item")).scalars())
    engine.dispose()
    assert "s-599" in stored and "s-0" not in stored
    assert len(stored) == MAX_ENTRIES
