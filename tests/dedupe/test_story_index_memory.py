"""The daemon's story index stays small: about 1 kB per story, capped at what the store
loads, and forgetting a story forgets its band keys."""

from __future__ import annotations

import tracemalloc

from watchtower.dedupe import signature
from watchtower.store.polls import STORY_INDEX_LIMIT
from watchtower.story_index import MinHashStoryIndex

WORDS = "north korea un rights camp defector china border report said court".split()


def _sig(i: int) -> bytes:
    text = " ".join(WORDS[(i * 7 + k * k) % len(WORDS)] + str(k % (i + 3)) for k in range(60))
    return signature(f"story {i}", text)


def test_index_costs_under_1_5kb_per_story_and_is_capped_like_the_store() -> None:
    sigs = [_sig(i) for i in range(3000)]
    tracemalloc.start()
    try:
        index = MinHashStoryIndex()
        for i, sig in enumerate(sigs):
            index.add(i, sig)
        used, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert used / len(sigs) < 1536, f"{used / len(sigs):.0f} bytes per story"
    assert index.max_stories == STORY_INDEX_LIMIT
    assert index.find(sigs[42]) == 42


def test_cap_and_removal_leave_no_band_keys_behind() -> None:
    index = MinHashStoryIndex(max_stories=10)
    for i in range(50):
        index.add(i, _sig(i))
    assert len(index) == 10
    assert index.find(_sig(0)) is None and index.find(_sig(49)) == 49
    for i in range(40, 50):
        index.remove(i)
    assert len(index) == 0 and index.find(_sig(45)) is None
    index._merge()  # forgotten stories leave the sorted keys at the next merge
    assert index._keys.size == 0 and len(index._free) >= 10
