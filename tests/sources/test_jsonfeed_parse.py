"""JSON Feed 1.0 / 1.1 sources: items become entries; hostile bodies give ParseError."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support import LoopbackHTTP, Response, shared_path
from watchtower.errors import ParseError
from watchtower.models import FetchResult
from watchtower.sources.jsonfeed import looks_like_json_feed, parse_json_feed

FEED_URL = "https://ngo.example.org/feed.json"


def result(body: bytes | dict[str, Any], ctype: str = "application/feed+json") -> FetchResult:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return FetchResult(FEED_URL, 200, raw, {"content-type": ctype})


def feed_11() -> dict[str, Any]:
    return {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "NGO statements",
        "authors": [{"name": "Press office"}],
        "items": [
            {
                "id": "stmt-2024-031",
                "url": "https://ngo.example.org/statements/31?utm_source=feed",
                "title": "Forced repatriation of North Korean escapees from China",
                "content_html": "<p>China <b>returned</b> 60 escapees.</p><script>x()</script>",
                "summary": "Sixty people were sent back.",
                "date_published": "2024-03-12T10:30:00+09:00",
                "authors": [{"name": "Jane Doe"}],
            },
            {
                "id": 42,
                "url": "/statements/30",
                "content_text": "A statement without a title.\nSecond line.",
                "date_published": "2024-03-01T08:00:00Z",
            },
        ],
    }


def test_json_feed_11_items_become_entries() -> None:
    entries = parse_json_feed(result(feed_11()), "ngo")
    assert [e.guid for e in entries] == ["stmt-2024-031", "42"]
    first, second = entries
    assert first.source == "ngo" and first.kind == "feed"
    assert first.title == "Forced repatriation of North Korean escapees from China"
    assert first.url == "https://ngo.example.org/statements/31"
    assert first.content == "China returned 60 escapees."
    assert "x()" not in first.text
    assert first.summary == "Sixty people were sent back."
    assert first.published == datetime(2024, 3, 12, 1, 30, tzinfo=UTC)
    assert second.url == "https://ngo.example.org/statements/30"
    assert second.title == "A statement without a title."
    assert second.published == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def test_json_feed_10_example_from_feedparser_tests() -> None:
    path = shared_path("corpora", "feedparser-tests", "json", "example.json")
    entries = parse_json_feed(result(path.read_bytes(), "application/json"), "example")
    assert [(e.guid, e.url) for e in entries] == [
        ("2", "https://example.org/second-item"),
        ("1", "https://example.org/initial-post"),
    ]
    assert entries[0].title == "post 2" and entries[0].content == "This is a second item."
    assert entries[1].content == "Hello, world!"


def test_served_over_loopback_and_dispatched_by_content_type(http_server: LoopbackHTTP) -> None:
    body = json.dumps(feed_11()).encode()
    http_server.routes["/feed.json"] = Response(200, {"Content-Type": "application/json"}, body)
    answer = httpx.get(http_server.url("/feed.json"))
    fetched = FetchResult(
        str(answer.url), answer.status_code, answer.content, dict(answer.headers.items())
    )
    assert looks_like_json_feed(fetched)
    assert len(parse_json_feed(fetched, "ngo")) == 2


@pytest.mark.parametrize(
    ("ctype", "body", "expected"),
    [
        ("application/feed+json", b"{}", True),
        ("application/json; charset=utf-8", b'{"version": "https://jsonfeed.org/version/1"}', True),
        ("application/json", b'{"data": []}', False),
        ("", b' {"version":"https://jsonfeed.org/version/1.1","items":[]}', True),
        ("text/plain", b'{"version":"https://jsonfeed.org/version/1.1","items":[]}', True),
        ("application/rss+xml", b"<rss/>", False),
        ("text/html", b"<p>see https://jsonfeed.org/version/1</p>", False),
    ],
)
def test_looks_like_json_feed(ctype: str, body: bytes, expected: bool) -> None:
    assert looks_like_json_feed(FetchResult(FEED_URL, 200, body, {"content-type": ctype})) is (
        expected
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"", "invalid JSON"),
        (b"[1, 2]", "not a JSON Feed: the top level is not an object"),
        (b'{"items": []}', "not a JSON Feed: missing version"),
        (b'{"version": "https://example.org/v2", "items": []}', "not a JSON Feed: unknown version"),
        (b'{"version": "https://jsonfeed.org/version/1"}', "not a JSON Feed: items"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": {}}', "not a JSON Feed: items"),
        (b"\xff\xfe{\x00", "not UTF-8"),
        (b"[" * 200_000 + b"]" * 200_000, "JSON"),
        (b"{" + b'"a": 1, ' * 10 + b'"n": ' + b"9" * 5000 + b"}", "invalid JSON"),
    ],
)
def test_invalid_bodies_give_a_short_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_json_feed(result(body), "bad")
    assert reason in caught.value.reason
    assert len(caught.value.reason) < 200


def test_hostile_items_are_cleaned_or_skipped() -> None:
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {"id": "js", "url": "javascript:alert(1)", "title": "<script>alert(1)</script>Hi"},
            {
                "id": "data",
                "url": "data:text/html,<h1>x</h1>",
                "external_url": "file:///etc/passwd",
            },
            "not an object",
            None,
            {},
            {"id": None, "title": ["not", "text"], "url": 7, "content_text": {"a": 1}},
            {"id": "long", "title": "T" * 50_000, "content_text": "word " * 100_000},
            {"id": "dates", "title": "x", "date_published": "yesterday"},
            {"id": "naive", "title": "x", "date_published": "2024-01-02T03:04:05"},
            {"id": "far", "title": "x", "date_published": "9999-12-31T23:59:59-12:00"},
        ],
    }
    entries = {e.guid: e for e in parse_json_feed(result(feed), "hostile")}
    assert set(entries) == {"js", "data", "long", "dates", "naive", "far"}
    assert entries["js"].url is None and entries["js"].title == "Hi"
    assert entries["data"].url is None
    assert len(entries["long"].title) <= 1000 and len(entries["long"].content) <= 200_000
    assert entries["dates"].published is None
    assert entries["naive"].published == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert entries["far"].published is None or entries["far"].published.tzinfo is UTC


def test_oversized_body_and_many_items_are_bounded() -> None:
    with pytest.raises(ParseError, match="too large"):
        parse_json_feed(result(b" " * 20_000_001), "big")
    many = {
        "version": "https://jsonfeed.org/version/1",
        "items": [{"id": str(i), "title": f"item {i}"} for i in range(5000)],
    }
    assert len(parse_json_feed(result(many), "many")) == 2000


def test_item_without_id_gets_a_stable_guid() -> None:
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"url": "https://ngo.example.org/a#top"}, {"title": "Only a title"}],
    }
    first = parse_json_feed(result(feed), "ngo")
    again = parse_json_feed(result(feed), "ngo")
    assert [e.guid for e in first] == [e.guid for e in again]
    assert first[0].guid == "https://ngo.example.org/a"
    assert first[1].guid.startswith("sha256:")
