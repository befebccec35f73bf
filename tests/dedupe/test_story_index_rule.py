"""The story index answers exactly what the pairwise rule (``dedupe.same_story``) would,
also when hundreds of stories crowd the same bands."""

from __future__ import annotations

import random

from watchtower.dedupe import HEADER_SIZE, same_story, signature, similarity
from watchtower.story_index import MinHashStoryIndex

STOCK = "the united nations special rapporteur on the situation of human rights in north korea"
WORDS = "defector border china camp court labour report women trafficking said".split()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(f"{rng.choice(WORDS)}{rng.randrange(40)}" for _ in range(n))


def _crowded(count: int) -> list[bytes]:
    """Items that share a long stock phrase, some reworded copies of earlier ones."""
    rng = random.Random(7)
    bodies: list[str] = []
    for _ in range(count):
        if bodies and rng.random() < 0.3:
            words = rng.choice(bodies).split()
            for _ in range(rng.randrange(1, 6)):
                words[rng.randrange(len(words))] = _text(rng, 1)
            bodies.append(" ".join(words))
        else:
            bodies.append(f"{STOCK} {_text(rng, rng.randrange(3, 60))} {STOCK}")
    return [signature(f"item {i}" if i % 3 else "", body) for i, body in enumerate(bodies)]


def _pairwise(known: dict[int, bytes], sig: bytes) -> int | None:
    best: tuple[float, int] | None = None
    for story_id, other in known.items():
        if same_story(sig, other):
            key = (similarity(sig, other), story_id)
            best = key if best is None or key > best else best
    return best[1] if best else None


def test_index_picks_what_the_pairwise_rule_picks_in_crowded_bands() -> None:
    index = MinHashStoryIndex(max_stories=150)
    known: dict[int, bytes] = {}
    joined = 0
    for story_id, sig in enumerate(_crowded(600)):
        expected = _pairwise(known, sig)
        found = index.find(sig)
        if expected is not None and found is None:
            continue  # LSH may miss a pair the rule accepts; it must never pick another
        assert found == expected, f"item {story_id}: index {found}, rule {expected}"
        if found is None:
            index.add(story_id, sig)
            known[story_id] = sig
            if len(known) > 150:
                del known[min(known)]
        else:
            joined += 1
    assert joined > 50  # the reworded copies were found
    assert len(index) == len(known) == 150


def test_removed_and_replaced_stories_are_forgotten() -> None:
    sigs = _crowded(40)
    index = MinHashStoryIndex()
    for story_id, sig in enumerate(sigs):
        index.add(story_id, sig)
    index.add(5, sigs[6])  # story 5 re-pointed at another signature
    assert index.find(sigs[6]) in (5, 6)
    index.remove(6)
    assert index.find(sigs[6]) == 5
    index.remove(5)
    assert index.find(sigs[6]) not in (5, 6)  # a reworded copy of it may remain
    assert index.find(b"") is None and index.find(b"junk") is None
    assert len(index) == 38


def test_many_lookups_at_once_answer_as_one_at_a_time() -> None:
    """``find_many`` (one poll's items in one go) gives what ``find`` gives for each,
    whether the stories sit in the sorted keys, wait to be merged, or were forgotten."""
    sigs = _crowded(900)
    index = MinHashStoryIndex(max_stories=400)
    assert index.find_many(sigs[:5]) == [None] * 5  # an empty index
    for story_id, sig in enumerate(sigs[:600]):
        if story_id % 7 == 0:
            index.remove(story_id - 14)
        if index.find(sig) is None:
            index.add(story_id, sig)
        if story_id % 97 == 0:  # states with and without stories waiting to be merged
            queries = [*sigs[600 + story_id % 250 :][:40], b"", b"short", sig]
            assert index.find_many(queries) == [index.find(q) for q in queries]
    queries = sigs[600:]
    answers = index.find_many(queries)
    assert answers == [index.find(q) for q in queries]
    assert sum(a is not None for a in answers) > 30


def test_many_lookups_whose_candidates_all_fail_the_rule_find_nothing() -> None:
    """Sharing one band (2 of 64 hashes) makes a candidate, not a near-duplicate."""
    known = signature("", "the first story " * 3 + _text(random.Random(1), 40))
    index = MinHashStoryIndex()
    index.add(1, known)
    header, body = known[:HEADER_SIZE], bytearray(known[HEADER_SIZE:])
    for i in range(8, len(body)):  # keep band 0 (the first 8 bytes), change the rest
        body[i] ^= 0x5A
    lookalike = header[:1] + (1).to_bytes(4, "little") + bytes(body)
    assert index.find(lookalike) is None
    assert index.find_many([lookalike, lookalike]) == [None, None]
    assert index.find_many([lookalike, known]) == [None, 1]
