"""The review page over the real store (SQLite and PostgreSQL): a digest's emailed
"Not relevant" link records the verdict end to end, tampered tokens are refused, and
search finds alerts by a word of their title in English, Korean and Chinese."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.notify.test_notify_support import email_config
from tests.web.store_world import TITLES, ids_by_key, store_with_alerts, web_config
from tests.web.test_web_email_link import _Sink, smtp  # noqa: F401  (fixture)
from tests.web_fakes import live_server
from watchtower.notify.digest import send_digest
from watchtower.review import StoreReader, link_maker, signing_key
from watchtower.store import Store
from watchtower.web.app import create_app

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with store_with_alerts(store_url) as st:
        yield st


def _app(store: Store, url: str, public_url: str | None = None) -> object:
    config = web_config(url, public_url)
    return create_app(StoreReader(store), signing_key(config, store), public_url=public_url)


def _tampered(link: str) -> str:
    """The link with one character of its MAC changed (not the last: base64 padding bits)."""
    ch = link[-5]
    return link[:-5] + ("A" if ch != "A" else "B") + link[-4:]


def test_digest_not_relevant_link_records_the_verdict_end_to_end(
    store: Store,
    store_url: str,
    smtp: tuple[int, _Sink],  # noqa: F811
) -> None:
    port, sink = smtp
    ids = ids_by_key(store)
    # the app and the digest share the key kept in the store; the server's URL is public
    with live_server(_app(store, store_url)) as base:
        links = link_maker(web_config(store_url, base), store)
        assert links is not None
        outcome = asyncio.run(
            send_digest(store, email_config(port), now=datetime.now(UTC), links=links)
        )
        assert outcome.sent and outcome.alert_count == 4
        [raw] = sink.raw
        received = email.message_from_bytes(raw, policy=email.policy.default)
        html = received.get_body(("html",))
        text = received.get_body(("plain",))
        assert html is not None and text is not None
        body = html.get_content()
        # the English alert's card and its "Not relevant" link
        card = body[body.index(TITLES["en"]) :]
        link = re.search(r'<a href="([^"]+)"[^>]*>Not relevant</a>', card)
        assert link and link.group(1).startswith(base + "/feedback/")
        assert link.group(1) in text.get_content()
        assert "sent back across the border" in card  # the excerpt

        with httpx.Client() as browser:
            bad = browser.get(_tampered(link.group(1)))
            assert bad.status_code == 403
            confirm = browser.get(link.group(1))
            assert confirm.status_code == 200 and TITLES["en"] in confirm.text
            assert store.feedback_for([ids["en"]]) == {}  # opening records nothing
            csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', confirm.text)
            assert csrf
            refused = browser.post(_tampered(link.group(1)), data={"csrf": csrf.group(1)})
            assert refused.status_code == 403
            assert store.feedback_for([ids["en"]]) == {}
            done = browser.post(link.group(1), data={"csrf": csrf.group(1)})
            assert done.status_code == 200
            alerts = browser.get(base + "/api/alerts").json()
    assert store.feedback_for(ids.values()) == {ids["en"]: "not-relevant"}
    verdicts = {a["alert_id"]: a["feedback"] for a in alerts}
    assert verdicts == {
        ids["en"]: "not-relevant",
        ids["ko"]: None,
        ids["zh"]: None,
        ids["hostile"]: None,
    }
    assert [a["alert_id"] for a in alerts] == [ids[k] for k in ("en", "ko", "zh", "hostile")]


@pytest.mark.parametrize(
    ("q", "key"),
    [
        ("defectors", "en"),
        ("Resumes DEFECTORS", "en"),
        ("탈북민", "ko"),  # the title has 탈북민을 (with a particle)
        ("강제북송", "ko"),
        ("遣返", "zh"),
        ("脱北者", "zh"),
    ],
)
def test_api_search_finds_an_alert_by_a_word_of_its_title(
    store: Store, store_url: str, q: str, key: str
) -> None:
    ids = ids_by_key(store)
    app = _app(store, store_url, public_url="https://wt.example.org")
    with live_server(app) as base, httpx.Client() as client:
        found = client.get(base + "/api/alerts", params={"q": q, "limit": 10}).json()
        assert [a["alert_id"] for a in found] == [ids[key]]
        [obj] = found
        assert obj["title"] == TITLES[key]
        assert obj["lang"] == ("en" if key == "en" else key)
        assert obj["excerpt"] and obj["feedback"] is None and obj["archive"] is None
        assert set(obj["feedback_links"]) == {"relevant", "not_relevant"}
        assert client.get(base + "/api/alerts", params={"q": "nothingmatches"}).json() == []
        page = client.get(base + "/", params={"q": q})
        assert page.status_code == 200 and "<script>document" not in page.text


def test_health_rows_come_from_the_store(store: Store, store_url: str) -> None:
    with live_server(_app(store, store_url)) as base, httpx.Client() as client:
        page = client.get(base + "/sources")
    assert page.status_code == 200
    for name in ("Daily NK", "HRW", "UN page"):
        assert name in page.text
    rows = {r["name"]: r["state"] for r in StoreReader(store).source_health()}
    assert rows == {"Daily NK": "ok", "HRW": "never-polled", "UN page": "never-polled"}
