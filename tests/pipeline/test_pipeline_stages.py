"""Pipeline.poll runs its stages in order, with fakes at the edges (fetch and clock).

fetch → parse → drop already-seen → score → assign stories → decide → one store write;
only the items not stored yet are scored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from watchtower import alerting, scoring
from watchtower.config import load_config
from watchtower.models import Entry, Explanation, FetchResult, Score, ScoredEntry
from watchtower.pipeline import Pipeline
from watchtower.sources import dispatch
from watchtower.sources.feed import parse_feed
from watchtower.store import Store

NOW = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def rss(*guids: str) -> bytes:
    items = "".join(
        f"<item><title>Story {g}</title><link>https://news.example.org/{g}</link>"
        f"<guid>{g}</guid><description>Text of story {g}.</description></item>"
        for g in guids
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://news.example.org/</link><description>d</description>{items}"
        "</channel></rss>"
    ).encode()


class FakeFetcher:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.body = b""

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        self.calls.append("fetch")
        return FetchResult(url, 200, self.body, {"content-type": "application/rss+xml"})


class HalfScorer:
    """Every item scores 0.9 if its guid is odd, else 0.1."""

    def score(self, title: str, text: str) -> Score:
        return Score(0.9 if int(title.split()[-1]) % 2 else 0.1, Explanation())


def test_poll_runs_the_stages_in_order_and_scores_only_new_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "wt.yaml"
    path.write_text(
        f"store: sqlite:///{tmp_path}/wt.db\n"
        "sources:\n  - {name: Feed, feed: 'https://news.example.org/rss', every: 30m}\n"
    )
    config = load_config(path)
    calls: list[str] = []
    scored_guids: list[list[str]] = []

    async def parse(result: FetchResult, source: str, **_: Any) -> list[Entry]:
        calls.append("parse")
        return parse_feed(result, source)

    async def score(entries: Sequence[Entry], ref: Any, source: str, **_: Any) -> list[Any]:
        calls.append("score")
        scored_guids.append([e.title.split()[-1] for e in entries])
        return scoring.score_entries(HalfScorer(), entries)

    async def parse_and_score(
        kind: str, result: FetchResult, ref: Any, source: str, **_: Any
    ) -> list[Any]:
        calls.append("parse+score")
        entries = parse_feed(result, source)
        scored_guids.append([e.title.split()[-1] for e in entries])
        return scoring.score_entries(HalfScorer(), entries)

    real_decide = alerting.decide

    def decide(fresh: Sequence[ScoredEntry], *args: Any, **kwargs: Any) -> alerting.PollPlan:
        calls.append("decide")
        return real_decide(fresh, *args, **kwargs)

    monkeypatch.setattr(dispatch, "parse_feed_in_worker", parse)
    monkeypatch.setattr(scoring, "score_in_worker", score)
    monkeypatch.setattr(scoring, "parse_and_score_in_worker", parse_and_score)
    monkeypatch.setattr(alerting, "decide", decide)

    with Store.open(config.store) as store:
        store.sync_sources([(s.label, s.kind, s.url) for s in config.sources])
        for name, stage in (
            ("unseen_entries", "drop-seen"),
            ("known_stories", "assign"),
            ("write_poll", "write"),
        ):
            method = getattr(store, name)

            def spy(*args: Any, _method: Any = method, _stage: str = stage, **kw: Any) -> Any:
                calls.append(_stage)
                return _method(*args, **kw)

            monkeypatch.setattr(store, name, spy)
        fetcher = FakeFetcher(calls)
        pipeline = Pipeline(
            config, store, HalfScorer(), fetcher, lambda score: ["digest"], clock=lambda: NOW
        )
        source = config.sources[0]

        fetcher.body = rss("1", "2")
        first = asyncio.run(pipeline.poll(source))
        # nothing stored yet: every entry is new, parsed and scored in one worker job
        assert calls == ["fetch", "parse+score", "drop-seen", "assign", "decide", "write"]
        assert (first.status, first.new_items, first.new_alerts) == ("ok", 2, 1)

        calls.clear()
        fetcher.body = rss("1", "2", "3")
        second = asyncio.run(pipeline.poll(source))
        assert calls == ["fetch", "parse", "drop-seen", "score", "assign", "decide", "write"]
        assert scored_guids == [["1", "2"], ["3"]]
        assert (second.new_items, second.new_alerts) == (1, 1)
        alerts = store.list_alerts()
        assert sorted(a.title for a in alerts) == ["Story 1", "Story 3"]
