"""The story rule with the index production uses (MinHash near-duplicates), end to end
through the store: one story across outlets, a different story apart, the window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.dedupe.test_dedupe_stories import (
    OTHER,
    OTHER_TITLE,
    OUTLET,
    OUTLET_TITLE,
    UPDATE,
    UPDATE_TITLE,
    WIRE,
    WIRE_TITLE,
)
from tests.store.test_store_repo import NOW, SOURCES, poll, scored
from watchtower.dedupe import signature
from watchtower.store import Store
from watchtower.story_index import MinHashStoryIndex


def report(source: str, guid: str, title: str, text: str, value: float = 0.9):  # type: ignore[no-untyped-def]
    return scored(source, guid, value, signature=signature(title, text), title=title)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url, story_index_factory=MinHashStoryIndex) as st:
        st.sync_sources(SOURCES)
        yield st


def test_the_same_wire_story_from_two_outlets_is_one_alert(store: Store) -> None:
    first = poll(store, "Daily NK", [report("Daily NK", "w", WIRE_TITLE, WIRE)])
    second = poll(store, "HRW", [report("HRW", "o", OUTLET_TITLE, OUTLET)])
    assert len(first.new_alerts) == 1
    assert (second.new_alerts, second.joined_stories) == ((), 1)
    alerts = store.list_alerts()
    assert len(alerts) == 1
    assert {s.source for s in alerts[0].sources} == {"Daily NK", "HRW"}


def test_near_duplicates_within_one_poll_share_a_story(store: Store) -> None:
    outcome = poll(
        store,
        "HRW",
        [report("HRW", "a", WIRE_TITLE, WIRE), report("HRW", "b", UPDATE_TITLE, UPDATE)],
    )
    assert (len(outcome.new_alerts), outcome.joined_stories) == (1, 1)
    assert store.counts()["stories"] == 1


def test_a_different_story_on_the_same_subject_alerts_apart(store: Store) -> None:
    poll(store, "Daily NK", [report("Daily NK", "w", WIRE_TITLE, WIRE)])
    other = poll(store, "HRW", [report("HRW", "x", OTHER_TITLE, OTHER)])
    assert (len(other.new_alerts), other.joined_stories) == (1, 0)


def test_a_near_duplicate_after_the_story_window_starts_a_new_story(store: Store) -> None:
    poll(store, "Daily NK", [report("Daily NK", "w", WIRE_TITLE, WIRE)])
    later = poll(
        store,
        "HRW",
        [report("HRW", "o", OUTLET_TITLE, OUTLET)],
        now=NOW + timedelta(days=4),
    )
    assert (len(later.new_alerts), later.joined_stories) == (1, 0)
