"""The evidence stages inside Pipeline.poll, with a fake fetcher and the real store.

fulltext runs between drop-seen and score and only for ``full_text`` sources; the
archive runs after the write, is bounded, and whatever happens to it (a hanging fetch,
a failing store) the poll succeeds and the alert stays, with ``archive`` null.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from watchtower import evidence, scoring
from watchtower.config import Config, load_config
from watchtower.errors import StoreError
from watchtower.models import Entry, Explanation, FetchResult, Score
from watchtower.pipeline import Pipeline
from watchtower.store import Store
from watchtower.store.tables import Item

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
FEED_URL = "https://wire.example.org/rss"
DOC_URL = "https://wire.example.org/world/returned"
ARTICLE = (
    b"<html><body><main><article><h1>Returned</h1><p>"
    + b"Chinese authorities carried out the forced repatriation of sixty escapees. " * 12
    + b"</p></article></main></body></html>"
)


def rss(teaser: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<link>https://wire.example.org/</link><description>d</description>"
        f"<item><title>This week's news</title><link>{DOC_URL}</link><guid>a1</guid>"
        f"<description>{teaser}</description></item></channel></rss>"
    ).encode()


class Fetcher:
    """Serves the feed and the article; ``hang`` makes document fetches never answer."""

    def __init__(self, feed: bytes) -> None:
        self.feed = feed
        self.urls: list[str] = []
        self.hang = False

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = "",
    ) -> FetchResult:
        self.urls.append(url)
        if url == FEED_URL:
            return FetchResult(url, 200, self.feed, {"content-type": "application/rss+xml"})
        if self.hang:
            await asyncio.sleep(3600)
        return FetchResult(url, 200, ARTICLE, {"content-type": "text/html"})


class TermScorer:
    """0.9 when the text mentions forced repatriation, else 0.1."""

    def score(self, title: str, text: str) -> Score:
        return Score(0.9 if "forced repatriation" in text else 0.1, Explanation())


@pytest.fixture(autouse=True)
def score_here(monkeypatch: pytest.MonkeyPatch) -> None:
    async def score(entries: Sequence[Entry], ref: Any, source: str, **_: Any) -> list[Any]:
        return scoring.score_entries(TermScorer(), entries)

    monkeypatch.setattr(scoring, "score_in_worker", score)


def config(tmp_path: Path, *, full_text: bool, archive: bool = True) -> Config:
    path = tmp_path / "wt.yaml"
    lines = [
        f"store: sqlite:///{tmp_path}/wt.db",
        "sources:",
        f"  - {{name: Wire, feed: '{FEED_URL}', full_text: {str(full_text).lower()}}}",
    ]
    if archive:
        lines.append("archive: {dir: evidence}")
    path.write_text("\n".join(lines) + "\n")
    return load_config(path)


def poll(cfg: Config, store: Store, fetcher: Fetcher) -> Any:
    store.sync_sources([(s.label, s.kind, s.url) for s in cfg.sources])
    pipeline = Pipeline(cfg, store, TermScorer(), fetcher, lambda score: [], clock=lambda: NOW)
    return asyncio.run(pipeline.poll(cfg.sources[0]))


def test_full_text_is_scored_stored_and_archived(tmp_path: Path) -> None:
    cfg = config(tmp_path, full_text=True)
    fetcher = Fetcher(rss("Our correspondent reports. Read more…"))
    with Store.open(cfg.store) as store:
        report = poll(cfg, store, fetcher)
        assert (report.status, report.new_items, report.new_alerts) == ("ok", 1, 1)
        [alert] = store.list_alerts()
        assert "scored on the full text of the linked document" in alert.explanation.notes
        with store.session() as session:
            [item] = session.exec(select(Item)).all()
        assert "forced repatriation of sixty escapees" in item.content  # the stored item
        assert item.summary == "Our correspondent reports. Read more…"
        assert alert.archive is not None
        assert Path(alert.archive["path"]).is_relative_to(tmp_path / "evidence")
    assert fetcher.urls == [FEED_URL, DOC_URL]  # fetched once: the full-text copy is archived


def test_without_full_text_the_teaser_is_scored_and_nothing_fetched(tmp_path: Path) -> None:
    cfg = config(tmp_path, full_text=False)
    fetcher = Fetcher(rss("Our correspondent reports. Read more…"))
    with Store.open(cfg.store) as store:
        report = poll(cfg, store, fetcher)
        assert (report.status, report.new_items, report.new_alerts) == ("ok", 1, 0)
    assert fetcher.urls == [FEED_URL]


def test_a_hanging_archive_fetch_is_bounded_and_the_alert_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evidence, "archive_bound", lambda timeout, alerts: 0.5)
    cfg = config(tmp_path, full_text=False)
    fetcher = Fetcher(rss("On the forced repatriation of escapees, our correspondent reports."))
    fetcher.hang = True
    with Store.open(cfg.store) as store:
        started = time.monotonic()
        report = poll(cfg, store, fetcher)
        assert time.monotonic() - started < 5
        assert (report.status, report.new_alerts) == ("ok", 1)
        [alert] = store.list_alerts()
        assert alert.archive is None
    assert fetcher.urls == [FEED_URL, DOC_URL]  # the forced fetch for the archive


def test_a_failing_store_leaves_the_poll_ok(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, full_text=True)
    fetcher = Fetcher(rss("Read more…"))

    def broken(*args: object) -> bool:
        raise StoreError("store: database is locked")

    with Store.open(cfg.store) as store:
        monkeypatch.setattr(store, "set_alert_archive", broken)
        report = poll(cfg, store, fetcher)
        assert (report.status, report.new_alerts) == ("ok", 1)
        [alert] = store.list_alerts()
        assert alert.archive is None
    assert list((tmp_path / "evidence").rglob("*.warc.gz"))  # written, only not recorded


def test_no_archive_configured_writes_nothing(tmp_path: Path) -> None:
    cfg = config(tmp_path, full_text=True, archive=False)
    fetcher = Fetcher(rss("Read more…"))
    with Store.open(cfg.store) as store:
        report = poll(cfg, store, fetcher)
        assert report.new_alerts == 1
        assert store.list_alerts()[0].archive is None
    assert not (tmp_path / "evidence").exists()


def test_archive_config_paths_and_defaults(tmp_path: Path) -> None:
    cfg = config(tmp_path, full_text=True)
    assert cfg.archive.dir == tmp_path / "evidence"
    assert cfg.archive.enabled and not cfg.archive.save_page_now
    assert f"archive: WARC copies in {tmp_path / 'evidence'}; Save Page Now off" in cfg.summary()
    (tmp_path / "wt.yaml").write_text(
        "archive:\nsources:\n  - {name: Wire, feed: 'https://wire.example.org/rss'}\n"
    )
    plain = load_config(tmp_path / "wt.yaml")
    assert plain.archive.dir is None and not plain.archive.enabled
    assert plain.sources[0].full_text is False
    assert "archive: off; Save Page Now off" in plain.summary()


def test_full_text_on_an_opml_entry_applies_to_each_of_its_feeds(tmp_path: Path) -> None:
    (tmp_path / "feeds.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>f</title></head><body>'
        '<outline type="rss" text="Wire A" xmlUrl="https://a.example.org/rss"/>'
        '<outline type="rss" text="Wire B" xmlUrl="https://b.example.org/rss"/>'
        "</body></opml>"
    )
    (tmp_path / "wt.yaml").write_text(
        "sources:\n  - {opml: feeds.opml, full_text: true}\n"
        "  - {name: Plain, feed: 'https://c.example.org/rss'}\n"
    )
    cfg = load_config(tmp_path / "wt.yaml")
    assert {s.label: s.full_text for s in cfg.feed_and_page_sources()} == {
        "Plain": False,
        "Wire A": True,
        "Wire B": True,
    }


def test_the_archive_bound_grows_with_the_alerts_and_is_capped() -> None:
    minute = timedelta(minutes=1)
    assert evidence.archive_bound(minute, 1) == 2 * 60 + 30
    assert evidence.archive_bound(minute, 4) == 2 * 60 + 30
    assert evidence.archive_bound(minute, 5) == 3 * 60 + 30
    assert evidence.archive_bound(minute, 1000) == evidence.MAX_ARCHIVE_SECONDS
