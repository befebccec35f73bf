"""Polls' writes committed together (``WriteBatch`` over ``Store.write_together``): one
commit for the writes that wait, each write's outcome as if it had run alone."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.store.test_store_repo import SOURCES, poll, scored
from watchtower.errors import StoreError
from watchtower.store import Store
from watchtower.writebatch import WriteBatch


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as st:
        st.sync_sources(SOURCES)
        yield st


def _commits(st: Store) -> list[int]:
    seen: list[int] = []
    sa.event.listen(st.engine, "commit", lambda _conn: seen.append(1))
    return seen


def _blocked(release: threading.Event) -> Callable[[], str]:
    def wait() -> str:
        assert release.wait(10)
        return "blocker"

    return wait


def _batched(st: Store, writes: list[Callable[[], Any]], cancel: int | None = None) -> list[Any]:
    """Submit a write that holds the store, then ``writes`` while it does; the results
    (or errors) of ``writes``, in order. ``cancel``: the index of one to cancel."""

    async def run() -> list[Any]:
        batch, release = WriteBatch(st), threading.Event()
        first = asyncio.ensure_future(batch.submit(_blocked(release)))
        await asyncio.sleep(0.05)  # the blocker's batch has started
        tasks = [asyncio.ensure_future(batch.submit(w)) for w in writes]
        await asyncio.sleep(0.05)
        if cancel is not None:
            tasks[cancel].cancel()
        release.set()
        assert await first == "blocker"
        return await asyncio.gather(*tasks, return_exceptions=True)

    return asyncio.run(run())


def test_waiting_writes_share_one_commit_and_see_each_other(store: Store) -> None:
    commits = _commits(store)
    one_story = b"same-story"
    writes = [
        functools.partial(poll, store, "Daily NK", [scored("Daily NK", "a", signature=one_story)]),
        functools.partial(poll, store, "HRW", [scored("HRW", "b", signature=one_story)]),
        functools.partial(poll, store, "UN page", [scored("UN page", "c")]),
    ]
    first, second, third = _batched(store, writes)
    assert len(commits) == 2, "the three waiting writes were not committed together"
    assert (first.new_items, len(first.new_alerts)) == (1, 1)
    assert (second.new_items, second.joined_stories, len(second.new_alerts)) == (1, 1, 0)
    assert third.new_items == 1
    counts = store.counts()
    assert (counts["items"], counts["stories"], counts["alerts"]) == (3, 2, 2)


def test_a_failing_write_is_rolled_back_alone(store: Store) -> None:
    ghost = b"rolled-back-story"

    def failing() -> None:  # writes a poll, then fails: none of it may stay
        poll(store, "HRW", [scored("HRW", "1", signature=ghost)])
        raise RuntimeError("failed after writing")

    writes = [
        functools.partial(poll, store, "Daily NK", [scored("Daily NK", "a")]),
        failing,  # rolled back to its savepoint; the writes after it run alone
        functools.partial(poll, store, "Nope", [scored("Nope", "x")]),  # not a source
        functools.partial(poll, store, "UN page", [scored("UN page", "c")]),
    ]
    before, broken_poll, unknown, after = _batched(store, writes)
    assert before.new_items == 1 and after.new_items == 1
    assert isinstance(broken_poll, RuntimeError)
    assert isinstance(unknown, StoreError) and "unknown source 'Nope'" in str(unknown)
    assert store.counts()["items"] == 2
    assert store.source_state("HRW").etag is None
    # the story made inside the rolled-back savepoint is gone from the index too
    later = poll(store, "Daily NK", [scored("Daily NK", "2", signature=ghost)])
    assert len(later.new_alerts) == 1 and later.joined_stories == 0


def test_a_write_cancelled_while_waiting_is_not_run(store: Store) -> None:
    writes = [
        functools.partial(poll, store, "Daily NK", [scored("Daily NK", "a")]),
        functools.partial(poll, store, "HRW", [scored("HRW", "b")]),
    ]
    kept, cancelled = _batched(store, writes, cancel=1)
    assert kept.new_items == 1
    assert isinstance(cancelled, asyncio.CancelledError)
    assert store.counts()["items"] == 1


def test_more_writes_than_a_batch_holds_all_commit_in_order(store: Store) -> None:
    commits = _commits(store)
    writes = [
        functools.partial(poll, store, "Daily NK", [scored("Daily NK", f"g{n}")]) for n in range(5)
    ]

    async def run() -> list[Any]:
        batch = WriteBatch(store, max_size=2)
        return await asyncio.gather(*(batch.submit(w) for w in writes))

    results = asyncio.run(run())
    assert [r.new_items for r in results] == [1] * 5
    assert len(commits) == 3  # batches of 2, 2 and 1
    assert store.counts()["items"] == 5


@pytest.mark.parametrize("size", [1, 3])
def test_write_together_returns_each_result_in_order(store: Store, size: int) -> None:
    done = store.write_together([functools.partial(lambda n: n * 10, n) for n in range(size)])
    assert [(w.ok, w.value) for w in done] == [(True, n * 10) for n in range(size)]


def _counted(calls: list[str], name: str, write: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        calls.append(name)
        return write()

    return run


def test_a_failing_write_costs_the_others_one_more_run_and_nothing_else(store: Store) -> None:
    """No savepoints: the batch is rolled back whole, then each write runs alone once."""
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("a bug in one poll's write")

    writes = [
        _counted(calls, "a", functools.partial(poll, store, "Daily NK", [scored("Daily NK", "a")])),
        _counted(calls, "broken", broken),
        _counted(calls, "b", functools.partial(poll, store, "HRW", [scored("HRW", "b")])),
    ]
    done = store.write_together(writes)
    assert [w.ok for w in done] == [True, False, True]
    assert isinstance(done[1].error, RuntimeError)
    assert calls == ["a", "broken", "a", "broken", "b"]
    counts = store.counts()
    assert (counts["items"], counts["alerts"]) == (2, 2)  # each poll's item and alert, once


def test_a_commit_that_fails_fails_every_write_of_the_batch_and_runs_none_again(
    store: Store, store_url: str
) -> None:
    if not store_url.startswith("sqlite"):
        pytest.skip("a commit refused by a deferred foreign key is SQLite's")
    calls: list[str] = []

    def orphan() -> None:  # a row whose parent is missing, checked only at COMMIT
        with store.writer():
            conn = store._held
            assert conn is not None
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
            conn.exec_driver_sql(
                "INSERT INTO feedback (alert_id, verdict, created_at, updated_at) "
                "VALUES (424242, 'relevant', '2026-12-01 00:00:00', '2026-12-01 00:00:00')"
            )

    writes = [
        _counted(calls, "a", functools.partial(poll, store, "Daily NK", [scored("Daily NK", "a")])),
        _counted(calls, "orphan", orphan),
    ]
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        store.write_together(writes)
    assert calls == ["a", "orphan"]
    assert store.counts()["items"] == 0
    later = poll(store, "Daily NK", [scored("Daily NK", "a")])  # the story index was reloaded
    assert later.new_items == 1 and len(later.new_alerts) == 1


def test_a_batch_makes_every_committed_poll_searchable_and_nothing_of_a_failed_one(
    store: Store,
) -> None:
    """The full-text rows of a batch are indexed together at its end, in its transaction."""

    def broken() -> None:
        poll(store, "HRW", [scored("HRW", "x", title="Zanzibar crossing")])
        raise RuntimeError("failed after writing")

    writes = [
        functools.partial(
            poll, store, "Daily NK", [scored("Daily NK", "a", title="Tumen crossing")]
        ),
        broken,
        functools.partial(poll, store, "UN page", [scored("UN page", "c", title="Yalu crossing")]),
    ]
    done = store.write_together(writes)
    assert [w.ok for w in done] == [True, False, True]
    assert [a.title for a in store.search_alerts("Tumen", 10)] == ["Tumen crossing"]
    assert [a.title for a in store.search_alerts("Yalu", 10)] == ["Yalu crossing"]
    assert store.search_alerts("Zanzibar", 10) == []
    assert sorted(a.title for a in store.search_alerts("crossing", 10)) == [
        "Tumen crossing",
        "Yalu crossing",
    ]
