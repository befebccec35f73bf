"""Store: polls, stories, alerts, deliveries, source health and reads (SQLite + PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from watchtower.errors import StoreError
from watchtower.models import Entry, Explanation, FetchState, Match, Score, ScoredEntry
from watchtower.store import ExactStoryIndex, Store
from watchtower.store.tables import Delivery, Item, Snapshot, Story

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SOURCES = [
    ("Daily NK", "feed", "http://127.0.0.1:9/dailynk.xml"),
    ("HRW", "feed", "http://127.0.0.1:9/hrw.xml"),
    ("UN page", "page", "http://127.0.0.1:9/un.html"),
]


def scored(
    source: str,
    guid: str,
    value: float = 0.9,
    *,
    signature: bytes | None = None,
    title: str | None = None,
    excluded_by: str | None = None,
    diff: tuple[str, ...] = (),
) -> ScoredEntry:
    explanation = Explanation(
        matches=(
            Match("entity", "North Korea", 0.4, 2),
            Match("term", "forced repatriation", 0.3),
        ),
        nearest_seed="hrw-2023-repatriation.txt",
        seed_similarity=0.61,
        excluded_by=excluded_by,
        notes=("title counted twice",),
    )
    entry = Entry(
        source=source,
        guid=guid,
        title=title or f"Story {guid}",
        url=f"https://news.example/{source.replace(' ', '-')}/{guid}",
        summary="China returned escapees to North Korea.",
        content="Full text about forced repatriation.",
        published=NOW - timedelta(hours=2),
        kind="page" if diff else "feed",
        diff=diff,
    )
    sig = signature if signature is not None else f"sig-{guid}".encode()
    return ScoredEntry(entry, Score(value, explanation), sig)


def channels(score: float) -> Sequence[str]:
    out = ["webhook:ngo", "digest"]
    if score >= 0.8:
        out.append("email")
    return out


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as st:
        st.sync_sources(SOURCES)
        yield st


def poll(
    st: Store,
    source: str,
    entries: Sequence[ScoredEntry],
    *,
    now: datetime = NOW,
    state: FetchState | None = None,
    window: timedelta = timedelta(days=3),
):  # type: ignore[no-untyped-def]
    return st.record_poll(
        source,
        state or FetchState(etag='"v1"', last_modified="Sat, 01 Mar 2025 10:00:00 GMT"),
        entries,
        threshold=0.5,
        channels=channels,
        now=now,
        next_due_at=now + timedelta(minutes=30),
        story_window=window,
    )


def test_record_poll_stores_new_items_once(store: Store) -> None:
    entries = [scored("Daily NK", "a", 0.9), scored("Daily NK", "b", 0.2)]
    first = poll(store, "Daily NK", entries)
    assert first.new_items == 2
    assert len(first.new_alerts) == 1
    assert first.joined_stories == 0

    again = poll(store, "Daily NK", entries, now=NOW + timedelta(minutes=30))
    assert again.new_items == 0
    assert again.new_alerts == ()
    counts = store.counts()
    assert counts["items"] == 2
    assert counts["alerts"] == 1
    assert counts["deliveries_pending"] == 3  # webhook, digest, email for 0.9

    state = store.source_state("Daily NK")
    assert state.etag == '"v1"'
    assert state.last_modified == "Sat, 01 Mar 2025 10:00:00 GMT"
    assert state.last_success_at == NOW + timedelta(minutes=30)
    assert state.next_due_at == NOW + timedelta(hours=1)


def test_duplicate_guid_within_one_poll_is_stored_once(store: Store) -> None:
    outcome = poll(store, "HRW", [scored("HRW", "x"), scored("HRW", "x", title="Again")])
    assert outcome.new_items == 1
    assert store.counts()["items"] == 1


def test_same_story_from_two_sources_is_one_alert(store: Store) -> None:
    sig = b"\x01\x02same-story"
    first = poll(store, "Daily NK", [scored("Daily NK", "dnk-1", 0.9, signature=sig)])
    second = poll(
        store,
        "HRW",
        [scored("HRW", "hrw-7", 0.7, signature=sig)],
        now=NOW + timedelta(hours=5),
    )
    assert len(first.new_alerts) == 1
    assert second.new_items == 1
    assert second.new_alerts == ()
    assert second.joined_stories == 1

    counts = store.counts()
    assert (counts["stories"], counts["alerts"], counts["deliveries_pending"]) == (1, 1, 3)
    (view,) = store.list_alerts()
    assert view.id == first.new_alerts[0]
    assert view.source == "Daily NK"
    assert [link.source for link in view.sources] == ["Daily NK", "HRW"]
    assert view.sources[1].url == "https://news.example/HRW/hrw-7"
    with store.session() as session:
        story = session.exec(select(Story)).one()
    assert story.item_count == 2
    assert story.best_score == pytest.approx(0.9)
    assert story.last_seen_at == NOW + timedelta(hours=5)


def test_story_outside_window_starts_a_new_story(store: Store) -> None:
    sig = b"old-story"
    poll(store, "Daily NK", [scored("Daily NK", "1", signature=sig)])
    later = poll(store, "HRW", [scored("HRW", "2", signature=sig)], now=NOW + timedelta(days=4))
    assert len(later.new_alerts) == 1
    assert later.joined_stories == 0
    assert store.counts()["stories"] == 2
    # and the newer story is the one joined from now on
    third = poll(
        store, "UN page", [scored("UN page", "3", signature=sig)], now=NOW + timedelta(days=5)
    )
    assert third.joined_stories == 1
    assert store.counts()["stories"] == 2


def test_empty_signature_never_groups(store: Store) -> None:
    outcome = poll(
        store,
        "Daily NK",
        [scored("Daily NK", "1", signature=b""), scored("Daily NK", "2", signature=b"")],
    )
    assert len(outcome.new_alerts) == 2
    assert store.counts()["stories"] == 2


def test_below_threshold_story_alerts_when_a_strong_item_joins(store: Store) -> None:
    sig = b"grows"
    weak = poll(store, "Daily NK", [scored("Daily NK", "w", 0.3, signature=sig)])
    assert weak.new_alerts == () and weak.joined_stories == 0
    strong = poll(store, "HRW", [scored("HRW", "s", 0.8, signature=sig)])
    assert len(strong.new_alerts) == 1
    (view,) = store.list_alerts()
    assert view.source == "HRW"
    assert view.score == pytest.approx(0.8)
    assert [link.source for link in view.sources] == ["Daily NK", "HRW"]


def test_excluded_item_never_alerts(store: Store) -> None:
    outcome = poll(store, "HRW", [scored("HRW", "ex", 0.99, excluded_by="sports")])
    assert outcome.new_items == 1
    assert outcome.new_alerts == ()
    assert store.counts()["alerts"] == 0
    assert store.counts()["deliveries_pending"] == 0
    with store.session() as session:
        item = session.exec(select(Item)).one()
    assert item.explanation["excluded_by"] == "sports"


def test_deliveries_one_per_channel_with_stable_message_ids(store: Store) -> None:
    def twice(score: float) -> Sequence[str]:
        return ["webhook:a", "webhook:b", "webhook:a", "email"]

    outcome = store.record_poll(
        "HRW", FetchState(), [scored("HRW", "1", 0.6)], threshold=0.5, channels=twice, now=NOW
    )
    (alert_id,) = outcome.new_alerts
    with store.session() as session:
        rows = session.exec(select(Delivery).order_by(Delivery.channel)).all()
    assert [r.channel for r in rows] == ["email", "webhook:a", "webhook:b"]
    assert {r.alert_id for r in rows} == {alert_id}
    assert all(r.status == "pending" and r.attempts == 0 for r in rows)
    assert all(r.next_attempt_at == NOW for r in rows)
    ids = [r.message_id for r in rows]
    assert len(set(ids)) == 3
    assert all(i.startswith("msg_") and len(i) == 28 for i in ids)


def test_alert_view_round_trips_explanation_diff_and_times(store: Store) -> None:
    entry = scored("UN page", "chg-1", 0.75, diff=("Line one added", "Zweite Zeile ✓"))
    (alert_id,) = poll(store, "UN page", [entry]).new_alerts
    view = store.alert_view(alert_id)
    assert view is not None
    assert view.explanation == entry.score.explanation
    assert view.diff == ("Line one added", "Zweite Zeile ✓")
    assert view.created_at == NOW and view.created_at.tzinfo is not None
    assert view.published == NOW - timedelta(hours=2)
    assert view.published is not None and view.published.utcoffset() == timedelta(0)
    assert view.title == "Story chg-1"
    assert store.alert_view(alert_id + 1000) is None


def test_naive_and_offset_datetimes_are_stored_as_utc(store: Store) -> None:
    from datetime import timezone

    seoul = timezone(timedelta(hours=9))
    poll(store, "HRW", [scored("HRW", "1")], now=datetime(2025, 3, 1, 21, 0, tzinfo=seoul))
    state = store.source_state("HRW")
    assert state.last_success_at == NOW
    assert state.last_success_at is not None and state.last_success_at.tzinfo is not None
    assert state.last_success_at.utcoffset() == timedelta(0)


def test_list_alerts_newest_first_with_since_and_limit(store: Store) -> None:
    for n in range(4):
        poll(store, "HRW", [scored("HRW", f"n{n}")], now=NOW + timedelta(hours=n))
    alerts = store.list_alerts()
    assert [a.title for a in alerts] == ["Story n3", "Story n2", "Story n1", "Story n0"]
    assert [a.title for a in store.list_alerts(limit=2)] == ["Story n3", "Story n2"]
    since = store.list_alerts(since=NOW + timedelta(hours=2))
    assert [a.title for a in since] == ["Story n3", "Story n2"]


def test_unknown_source_raises_store_error_and_writes_nothing(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown source 'Nope'"):
        poll(store, "Nope", [scored("Nope", "1")])
    with pytest.raises(StoreError):
        store.source_state("Nope")
    with pytest.raises(StoreError):
        store.record_failure("Nope", "x", now=NOW, next_due_at=None)
    assert store.counts()["items"] == 0


def test_failed_poll_rolls_back_everything_and_keeps_grouping(store: Store) -> None:
    def broken(score: float) -> Sequence[str]:
        raise RuntimeError("channel lookup failed")

    sig = b"rolled-back"
    with pytest.raises(RuntimeError):
        store.record_poll(
            "HRW",
            FetchState(etag="new"),
            [scored("HRW", "1", signature=sig)],
            threshold=0.5,
            channels=broken,
            now=NOW,
        )
    counts = store.counts()
    assert (counts["items"], counts["stories"], counts["alerts"]) == (0, 0, 0)
    assert store.source_state("HRW").etag is None
    # the story created inside the rolled-back transaction is gone from the index too
    ok = poll(store, "Daily NK", [scored("Daily NK", "2", signature=sig)])
    assert len(ok.new_alerts) == 1 and ok.joined_stories == 0
    assert poll(store, "HRW", [scored("HRW", "1", signature=sig)]).joined_stories == 1


def test_story_index_survives_reopen(store_url: str) -> None:
    sig = b"persisted"
    with Store.open(store_url) as first:
        first.sync_sources(SOURCES)
        poll(first, "Daily NK", [scored("Daily NK", "1", signature=sig)])
    with Store.open(store_url) as second:
        outcome = poll(second, "HRW", [scored("HRW", "2", signature=sig)])
        assert outcome.joined_stories == 1
        assert second.counts()["alerts"] == 1


def test_custom_story_index_factory_is_used(store_url: str) -> None:
    class Everything(ExactStoryIndex):
        """Puts every item into the first story ever seen."""

        def __init__(self) -> None:
            super().__init__()
            self.first: int | None = None

        def find(self, signature: bytes) -> int | None:
            return self.first

        def add(self, story_id: int, signature: bytes) -> None:
            self.first = self.first or story_id

    with Store.open(store_url, story_index_factory=Everything) as st:
        st.sync_sources(SOURCES)
        outcome = poll(st, "HRW", [scored("HRW", "1"), scored("HRW", "2"), scored("HRW", "3")])
        assert len(outcome.new_alerts) == 1
        assert outcome.joined_stories == 2


def test_record_failure_counts_and_success_resets(store: Store) -> None:
    later = NOW + timedelta(minutes=10)
    assert store.record_failure("HRW", "HTTP 503", now=NOW, next_due_at=later) == 1
    assert store.record_failure("HRW", "timeout after 20 s", now=later, next_due_at=None) == 2
    store.mark_failure_reported("HRW")
    health = {h.name: h for h in store.source_health(later)}["HRW"]
    assert health.consecutive_failures == 2
    assert health.last_error == "timeout after 20 s"
    assert health.failing_since == NOW
    assert health.last_polled_at == later
    assert health.failure_reported is True
    assert store.source_state("HRW").consecutive_failures == 2

    poll(store, "HRW", [], now=later + timedelta(minutes=5))
    health = {h.name: h for h in store.source_health(later)}["HRW"]
    assert (health.consecutive_failures, health.last_error) == (0, None)
    assert (health.failing_since, health.failure_reported) == (None, False)
    assert health.last_success_at == later + timedelta(minutes=5)
    assert store.record_failure("HRW", "again", now=later, next_due_at=None) == 1


def test_failure_reason_is_clipped(store: Store) -> None:
    store.record_failure("HRW", "x" * 5000, now=NOW, next_due_at=None)
    error = store.source_state("HRW").last_error
    assert error is not None and len(error) <= 1000


def test_source_health_counts_last_day(store: Store) -> None:
    poll(store, "HRW", [scored("HRW", "old")], now=NOW - timedelta(days=2))
    poll(store, "HRW", [scored("HRW", "a"), scored("HRW", "b", 0.1)], now=NOW)
    health = {h.name: h for h in store.source_health(NOW)}
    assert list(health) == ["Daily NK", "HRW", "UN page"]
    assert (health["HRW"].items_last_day, health["HRW"].alerts_last_day) == (2, 1)
    assert (health["Daily NK"].items_last_day, health["Daily NK"].alerts_last_day) == (0, 0)
    assert health["UN page"].kind == "page"


def test_sync_sources_updates_and_keeps_removed(store: Store) -> None:
    poll(store, "HRW", [scored("HRW", "1")])
    store.sync_sources([("HRW", "page", "http://127.0.0.1:9/new"), ("New", "feed", "http://x/")])
    health = {h.name: h for h in store.source_health(NOW)}
    assert set(health) == {"Daily NK", "HRW", "UN page", "New"}
    assert (health["HRW"].kind, health["HRW"].url) == ("page", "http://127.0.0.1:9/new")
    assert store.counts()["items"] == 1


def test_snapshots_change_detection_and_pruning(store: Store) -> None:
    for n in range(14):
        poll(
            store,
            "UN page",
            [],
            now=NOW + timedelta(hours=n),
            state=FetchState(page_hash=f"h{n}", snapshot=f"page text version {n}"),
        )
    # the same text again adds nothing
    poll(
        store,
        "UN page",
        [],
        now=NOW + timedelta(hours=20),
        state=FetchState(page_hash="h13", snapshot="page text version 13"),
    )
    # no snapshot given: the newest stays
    poll(store, "UN page", [], now=NOW + timedelta(hours=21), state=FetchState(page_hash="h13"))
    with store.session() as session:
        snaps = session.exec(select(Snapshot).order_by(Snapshot.taken_at)).all()
    assert len(snaps) == 10
    assert [s.text for s in snaps] == [f"page text version {n}" for n in range(4, 14)]
    state = store.source_state("UN page")
    assert state.snapshot == "page text version 13"
    assert state.page_hash == "h13"
    assert store.source_state("HRW").snapshot is None


def test_session_commits_and_rolls_back(store: Store) -> None:
    poll(store, "HRW", [scored("HRW", "1")])
    with pytest.raises(ValueError), store.session() as session:
        row = session.exec(select(Delivery)).first()
        assert row is not None
        row.status = "cancelled"
        session.add(row)
        raise ValueError("abort")
    assert store.counts()["deliveries_cancelled"] == 0
    with store.session() as session:
        for row in session.exec(select(Delivery)).all():
            row.status = "cancelled"
            session.add(row)
    assert store.counts()["deliveries_cancelled"] == 3


def test_counts_lists_every_status(store: Store) -> None:
    counts = store.counts()
    assert counts == {
        "sources": 3,
        "items": 0,
        "stories": 0,
        "alerts": 0,
        "deliveries_pending": 0,
        "deliveries_sending": 0,
        "deliveries_sent": 0,
        "deliveries_dead": 0,
        "deliveries_cancelled": 0,
    }


def test_hostile_text_is_stored_on_every_database(store: Store) -> None:
    nasty = "Title\x00 with NUL and a lone surrogate \ud800 end"
    entry = Entry(
        source="HRW",
        guid="guid\x00x",
        title=nasty,
        url="https://news.example/\x00",
        summary="<script>alert(1)</script>\x00",
        content="\ud83d" + "x" * 200_000,
        diff=("line\x00", "\udfff"),
        kind="page",
    )
    outcome = store.record_poll(
        "HRW",
        FetchState(etag='"e\x00"', snapshot="snap\x00shot \ud800"),
        [ScoredEntry(entry, Score(0.9), b"\x00\xff")],
        threshold=0.5,
        channels=channels,
        now=NOW,
    )
    (alert_id,) = outcome.new_alerts
    view = store.alert_view(alert_id)
    assert view is not None
    assert view.title == "Title with NUL and a lone surrogate ? end"
    assert view.diff == ("line", "?")
    assert view.sources[0].url == "https://news.example/"
    assert store.source_state("HRW").snapshot == "snapshot ?"
    store.record_failure("HRW", "bad \x00 reason \ud800", now=NOW, next_due_at=None)
    assert store.source_state("HRW").last_error == "bad  reason ?"
    # the same hostile entry again is recognised as already stored
    again = store.record_poll(
        "HRW",
        FetchState(),
        [ScoredEntry(entry, Score(0.9), b"\x00\xff")],
        threshold=0.5,
        channels=channels,
        now=NOW,
    )
    assert again.new_items == 0


def test_source_states_reads_every_source_as_source_state_does(store: Store) -> None:
    for n in range(3):
        poll(
            store,
            "UN page",
            [],
            now=NOW + timedelta(hours=n),
            state=FetchState(page_hash=f"h{n}", snapshot=f"page text version {n}"),
        )
    store.record_failure(
        SOURCES[0][0],
        "HTTP 500 Internal Server Error",
        now=NOW,
        next_due_at=NOW + timedelta(hours=1),
    )
    states = store.source_states()
    assert set(states) == {name for name, _kind, _url in SOURCES}
    for name in states:
        assert states[name] == store.source_state(name)
    assert states["UN page"].snapshot == "page text version 2"
