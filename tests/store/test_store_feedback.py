"""Store: verdicts on alerts, labelled items, kept keys and full-text search of alerts
(SQLite FTS5 and PostgreSQL tsvector, Korean and Chinese included)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.test_store_repo import NOW, SOURCES, poll, scored
from watchtower.errors import StoreError
from watchtower.store import Store
from watchtower.store.feedback import Labelled


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as st:
        st.sync_sources(SOURCES)
        yield st


def _alert_ids(store: Store) -> dict[str, int]:
    return {a.title: a.id for a in store.list_alerts(limit=50)}


def test_a_changed_verdict_replaces_the_earlier_one(store: Store) -> None:
    poll(store, "Daily NK", [scored("Daily NK", "a"), scored("Daily NK", "b")])
    ids = _alert_ids(store)
    a, b = ids["Story a"], ids["Story b"]
    assert store.feedback_for([a, b]) == {}
    assert store.record_feedback(a, "relevant", now=NOW)
    assert store.record_feedback(a, "not-relevant", now=NOW)
    assert store.feedback_for([a, b, 999]) == {a: "not-relevant"}
    assert not store.record_feedback(999, "relevant", now=NOW)
    with pytest.raises(StoreError):
        store.record_feedback(a, "maybe", now=NOW)  # type: ignore[arg-type]
    [judged] = [x for x in store.labelled_items() if x.origin == "alert"]
    assert (judged.alert_id, judged.label, judged.title) == (a, 0, "Story a")
    assert "forced repatriation" in judged.text


def test_imported_items_come_back_for_training(store: Store) -> None:
    items = [
        Labelled("Defectors sent back", "China repatriated them.", 2, "https://x.example/1"),
        Labelled("Missile test", "", 0),
        Labelled("Borderline", "Some text", 1),
    ]
    assert store.import_labelled(items, now=NOW) == 3
    assert [(x.title, x.label, x.origin) for x in store.labelled_items()] == [
        ("Defectors sent back", 2, "import"),
        ("Missile test", 0, "import"),
        ("Borderline", 1, "import"),
    ]
    assert store.import_labelled([], now=NOW) == 0


def test_kept_key_is_made_once(store_url: str) -> None:
    with Store.open(store_url) as st:
        first = st.kept_key("web", lambda: b"a" * 32)
        assert st.kept_key("web", lambda: b"b" * 32) == first == b"a" * 32
    with Store.open(store_url) as st:
        assert st.kept_key("web", lambda: b"c" * 32) == first


def test_search_finds_alerts_by_a_word_in_english_korean_and_chinese(store: Store) -> None:
    poll(
        store,
        "Daily NK",
        [
            scored("Daily NK", "en", title="China repatriates defectors"),
            scored("Daily NK", "ko", title="탈북민을 강제북송한 중국"),
            scored("Daily NK", "zh", title="中国强制遣返脱北者引发国际关注"),
            scored("Daily NK", "low", 0.1, title="Weather in Seoul"),
        ],
    )
    titles = lambda q: [a.title for a in store.search_alerts(q, 10)]  # noqa: E731
    assert titles("defectors") == ["China repatriates defectors"]
    assert titles("Defectors CHINA") == ["China repatriates defectors"]
    assert titles("탈북민") == ["탈북민을 강제북송한 중국"]
    assert titles("强制遣返") == ["中国强制遣返脱北者引发国际关注"]
    assert titles("weather") == []  # an item without an alert
    assert titles("nothingmatches") == []
    assert titles('"unbalanced OR NEAR( *') == []  # syntax is plain text
    assert len(titles(None)) == 3 and len(titles("  ")) == 3


def test_search_finds_an_alert_by_another_outlet_of_its_story(store: Store) -> None:
    poll(store, "Daily NK", [scored("Daily NK", "a", signature=b"s", title="First title")])
    poll(store, "HRW", [scored("HRW", "b", signature=b"s", title="Pyongyang camps report")])
    assert [a.title for a in store.search_alerts("camps", 10)] == ["First title"]


def test_migration_indexes_items_stored_before_it(store_url: str) -> None:
    import sqlalchemy as sa

    from watchtower.store import make_engine, migrate

    engine = make_engine(store_url)
    try:
        migrate(engine, "0001")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO source (name, kind, url, consecutive_failures, "
                    "failure_reported, created_at) VALUES ('Old', 'feed', 'http://x/', 0, "
                    ":f, :t)"
                ),
                {"f": False, "t": NOW},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO story (title, signature, first_seen_at, last_seen_at, "
                    "best_score, item_count) VALUES ('s', :b, :t, :t, 0.9, 1)"
                ),
                {"b": b"", "t": NOW},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO item (source_id, guid, title, summary, content, fetched_at, "
                    "kind, diff, score, explanation, signature, story_id) VALUES (1, 'g', "
                    "'정치범수용소 보고서', '', '', :t, 'feed', '[]', 0.9, '{}', :b, 1)"
                ),
                {"t": NOW, "b": b""},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO alert (story_id, item_id, score, explanation, created_at) "
                    "VALUES (1, 1, 0.9, '{}', :t)"
                ),
                {"t": NOW},
            )
    finally:
        engine.dispose()
    with Store.open(store_url) as st:
        [found] = st.search_alerts("수용소", 10)
        assert found.title == "정치범수용소 보고서"
        assert found.explanation.lang == "und" and found.explanation.excerpt == ""
