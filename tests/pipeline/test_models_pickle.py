"""What crosses to and from the worker processes comes back equal, field for field."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from watchtower.models import Entry, Explanation, FetchResult, Match, Score, ScoredEntry


def test_stage_data_round_trips_through_pickle() -> None:
    entry = Entry(
        source="RFA 한국어",
        guid="g-1",
        title="탈북민 강제북송 규탄",
        url="https://rfa.example/a",
        summary="summary",
        content="content",
        published=datetime(2026, 11, 30, 8, tzinfo=UTC),
        kind="feed",
        diff=("added line",),
    )
    explanation = Explanation(
        matches=(Match("term", "forced repatriation", 0.6),),
        nearest_seed="China shields Pyongyang",
        seed_similarity=0.4,
        notes=("note",),
        about="About North Korea",
        lang="ko",
        excerpt="…",
    )
    scored = ScoredEntry(entry, Score(0.91, explanation), b"\x02sig")
    result = FetchResult("https://rfa.example/feed", 200, b"<rss/>", {"etag": '"x"'}, '"x"')
    for value in (entry, explanation, scored, result, [scored, scored]):
        assert pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL)) == value
