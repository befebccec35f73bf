"""Store outbox: claims with leases, retries, dead letters, channel state (SQLite + PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from watchtower.errors import StoreError
from watchtower.models import Entry, FetchState, Score, ScoredEntry
from watchtower.store import DeliveryJob, Store

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_alerts(
    st: Store, count: int, chans: Sequence[str] = ("webhook:ngo",), now: datetime = NOW
) -> list[int]:
    entries = [
        ScoredEntry(Entry(source="HRW", guid=f"g{n}", title=f"T{n}"), Score(0.9), f"s{n}".encode())
        for n in range(count)
    ]
    outcome = st.record_poll(
        "HRW", FetchState(), entries, threshold=0.5, channels=lambda s: list(chans), now=now
    )
    return list(outcome.new_alerts)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as st:
        st.sync_sources([("HRW", "feed", "http://127.0.0.1:9/hrw.xml")])
        yield st


def test_claim_then_mark_sent(store: Store) -> None:
    (alert_id,) = make_alerts(store, 1, ("webhook:ngo", "email"))
    jobs = store.claim_deliveries(NOW)
    assert sorted(j.channel for j in jobs) == ["email", "webhook:ngo"]
    assert all(isinstance(j, DeliveryJob) and j.alert_id == alert_id for j in jobs)
    assert all(j.attempts == 0 and j.created_at == NOW for j in jobs)
    # claimed rows are not handed out again while the lease runs
    assert store.claim_deliveries(NOW + timedelta(minutes=4)) == []
    for job in jobs:
        store.mark_sent(job.id, NOW + timedelta(seconds=1))
    counts = store.counts()
    assert (counts["deliveries_sent"], counts["deliveries_sending"]) == (2, 0)
    # a sent row never comes back, even after the lease would have expired
    assert store.claim_deliveries(NOW + timedelta(hours=1)) == []


def test_claim_respects_due_time_limit_and_order(store: Store) -> None:
    make_alerts(store, 3, now=NOW)
    late_entry = ScoredEntry(Entry(source="HRW", guid="late", title="late"), Score(0.9), b"late")
    store.record_poll(
        "HRW",
        FetchState(),
        [late_entry],
        threshold=0.5,
        channels=lambda s: ["webhook:ngo"],
        now=NOW + timedelta(minutes=10),
    )
    assert store.claim_deliveries(NOW - timedelta(seconds=1)) == []
    hour = timedelta(hours=1)
    first = store.claim_deliveries(NOW, limit=2, lease=hour)
    assert len(first) == 2
    rest = store.claim_deliveries(NOW + timedelta(minutes=1), lease=hour)
    assert len(rest) == 1  # the late one is not due yet
    assert {j.id for j in first}.isdisjoint(j.id for j in rest)
    assert store.claim_deliveries(NOW, limit=0) == []
    (late,) = store.claim_deliveries(NOW + timedelta(minutes=10))
    assert late.id > max(j.id for j in first + rest)


def test_channel_prefix_restricts_claims(store: Store) -> None:
    make_alerts(store, 1, ("webhook:a_b", "webhook:axb", "email", "digest"))
    jobs = store.claim_deliveries(NOW, channel_prefix="webhook:a_")
    assert [j.channel for j in jobs] == ["webhook:a_b"]  # "_" is not a wildcard
    assert sorted(j.channel for j in store.claim_deliveries(NOW, channel_prefix="webhook:")) == [
        "webhook:axb"
    ]
    assert sorted(j.channel for j in store.claim_deliveries(NOW)) == ["digest", "email"]


def test_expired_lease_is_claimed_again(store: Store) -> None:
    make_alerts(store, 1)
    (job,) = store.claim_deliveries(NOW, lease=timedelta(minutes=5))
    assert store.claim_deliveries(NOW + timedelta(minutes=5)) == []  # lease_until not < now
    (again,) = store.claim_deliveries(NOW + timedelta(minutes=5, seconds=1))
    assert again.id == job.id
    assert again.message_id == job.message_id  # receivers dedupe on it
    store.mark_sent(again.id, NOW + timedelta(minutes=6))
    assert store.counts()["deliveries_sent"] == 1


def test_mark_retry_backs_off_and_counts_attempts(store: Store) -> None:
    make_alerts(store, 1)
    (job,) = store.claim_deliveries(NOW)
    store.mark_retry(job.id, "HTTP 503", NOW + timedelta(seconds=5))
    assert store.counts()["deliveries_pending"] == 1
    assert store.claim_deliveries(NOW + timedelta(seconds=4)) == []
    (again,) = store.claim_deliveries(NOW + timedelta(seconds=5))
    assert again.attempts == 1
    store.mark_retry(again.id, "HTTP 502", NOW + timedelta(minutes=5))
    (third,) = store.claim_deliveries(NOW + timedelta(minutes=5))
    assert third.attempts == 2


def test_mark_dead_dead_deliveries_and_requeue(store: Store) -> None:
    make_alerts(store, 3)
    jobs = store.claim_deliveries(NOW)
    for job in jobs:
        store.mark_dead(job.id, f"HTTP 400 for {job.id}")
    dead = store.dead_deliveries()
    assert [j.id for j, _ in dead] == sorted(j.id for j in jobs)
    assert all(err == f"HTTP 400 for {j.id}" and j.attempts == 1 for j, err in dead)
    assert store.claim_deliveries(NOW + timedelta(days=1)) == []

    assert store.requeue(jobs[0].id, now=NOW + timedelta(hours=1)) == 1
    assert store.requeue(jobs[0].id) == 0  # no longer dead
    (back,) = store.claim_deliveries(NOW + timedelta(hours=1))
    assert back.id == jobs[0].id and back.attempts == 0
    store.mark_sent(back.id, NOW + timedelta(hours=1))

    assert store.requeue(None, now=NOW + timedelta(hours=2)) == 2
    assert store.dead_deliveries() == []
    assert len(store.claim_deliveries(NOW + timedelta(hours=2))) == 2


def test_requeue_without_now_uses_current_time(store: Store) -> None:
    make_alerts(store, 1)
    (job,) = store.claim_deliveries(NOW)
    store.mark_dead(job.id, "gone")
    assert store.requeue(None) == 1
    assert len(store.claim_deliveries(datetime.now(UTC) + timedelta(seconds=1))) == 1


def test_unknown_delivery_raises_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="no delivery 4242"):
        store.mark_sent(4242, NOW)
    with pytest.raises(StoreError):
        store.mark_retry(4242, "x", NOW)
    with pytest.raises(StoreError):
        store.mark_dead(4242, "x")


def test_error_text_is_clipped(store: Store) -> None:
    make_alerts(store, 1)
    (job,) = store.claim_deliveries(NOW)
    store.mark_dead(job.id, "e" * 10_000)
    ((_, error),) = store.dead_deliveries()
    assert 0 < len(error) <= 1000


def test_disable_and_enable_channel(store: Store) -> None:
    assert store.disabled_channels() == {}
    store.disable_channel("webhook:old", "410 Gone", NOW)
    store.disable_channel("webhook:old", "410 Gone again", NOW + timedelta(hours=1))
    store.disable_channel("webhook:other", "410 Gone", NOW)
    assert store.disabled_channels() == {
        "webhook:old": "410 Gone again",
        "webhook:other": "410 Gone",
    }
    assert store.enable_channel("webhook:old") is True
    assert store.enable_channel("webhook:old") is False
    assert store.disabled_channels() == {"webhook:other": "410 Gone"}


def _claim_all(url: str, results: list[list[int]], barrier: threading.Barrier) -> None:
    with Store.open(url) as st:
        mine: list[int] = []
        barrier.wait()
        while True:
            jobs = st.claim_deliveries(NOW, limit=3)
            if not jobs:
                break
            mine.extend(j.id for j in jobs)
        results.append(mine)


def test_concurrent_claimers_never_share_a_row(store_url: str) -> None:
    with Store.open(store_url) as st:
        st.sync_sources([("HRW", "feed", "http://127.0.0.1:9/hrw.xml")])
        make_alerts(st, 40, ("webhook:a", "email"))
        total = st.counts()["deliveries_pending"]
    assert total == 80
    results: list[list[int]] = []
    barrier = threading.Barrier(3)
    threads = [
        threading.Thread(target=_claim_all, args=(store_url, results, barrier)) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=40)
    assert len(results) == 3
    claimed = [i for r in results for i in r]
    assert len(claimed) == total
    assert len(set(claimed)) == total


def test_one_store_claimed_from_several_threads(store: Store) -> None:
    make_alerts(store, 30)
    seen: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while jobs := store.claim_deliveries(NOW, limit=2):
            with lock:
                seen.extend(j.id for j in jobs)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=40)
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 30


def test_postgresql_claim_skips_rows_locked_by_another_transaction(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is PostgreSQL only; SQLite serialises writers instead")
    import sqlalchemy as sa

    with Store.open(store_url) as st:
        st.sync_sources([("HRW", "feed", "http://127.0.0.1:9/hrw.xml")])
        make_alerts(st, 4)
        other = sa.create_engine(st.engine.url)
        try:
            with other.begin() as conn:
                locked = set(
                    conn.execute(
                        sa.text("SELECT id FROM delivery ORDER BY id LIMIT 2 FOR UPDATE")
                    ).scalars()
                )
                jobs = st.claim_deliveries(NOW)  # must not wait for the lock
                assert {j.id for j in jobs}.isdisjoint(locked)
                assert len(jobs) == 2
        finally:
            other.dispose()
