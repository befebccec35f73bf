"""The daemon's story index: known stories by MinHash signature, in near-constant time.

:class:`MinHashStoryIndex` answers "which known story is this item a near-duplicate
of?" with the rule of :func:`watchtower.dedupe.same_story`: LSH banding (32 bands of 2
hashes) proposes candidates, then every candidate is confirmed at once, as one array
comparison over a table of signatures (a crowded band, such as one shared by hundreds
of items with the same stock phrase, costs one vectorised comparison, not hundreds of
Python loops). The answer is the candidate with the highest estimated Jaccard
similarity (the highest story id on a tie), exactly as the pairwise rule would pick it.

Memory: under 1 kB per story (a row of 64 ``uint32`` hashes, the shingle count, and 32
sorted 8-byte search keys with their rows). At most ``max_stories`` stories are held,
forgetting the oldest added first; the tables grow by doubling, so a small index (one
poll's own stories) is small. Not thread-safe: the store uses it from one writer.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from watchtower.dedupe import (
    BANDS,
    HEADER_SIZE,
    MIN_CONTAINMENT,
    MIN_JACCARD,
    MIN_SHINGLES_FOR_CONTAINMENT,
    NUM_HASHES,
    ROWS,
    SIZE,
    VERSION,
)

log = logging.getLogger(__name__)

if ROWS != 2:  # a band is read as one 64-bit integer below
    raise RuntimeError(f"story_index needs bands of 2 hashes, not {ROWS}")
_FIRST_CAPACITY = 16
_BAND_SHIFT = np.uint64(58)  # a search key: the band number in the top 6 bits, …
_VALUE_SHIFT = np.uint64(6)  # … the band value's top 58 bits below
_BAND_NUMBERS = np.arange(BANDS, dtype=np.uint64) << _BAND_SHIFT
_MERGE_AT = 256  # stories added are compared one by one until this many join the sorted keys
_Rows = npt.NDArray[np.intp]


def _parts(signature: bytes) -> tuple[int, npt.NDArray[np.uint32], npt.NDArray[np.uint64]] | None:
    """(shingle count, the 64 hashes, the 32 band values) of a usable signature.

    A band's value is its :data:`ROWS` (2) consecutive 32-bit hashes read as one 64-bit
    integer (little-endian, as a row of the hash table reads them)."""
    if len(signature) != SIZE or signature[0] != VERSION:
        return None
    count = int.from_bytes(signature[1:HEADER_SIZE], "little")
    hashes = np.frombuffer(signature, "<u4", NUM_HASHES, HEADER_SIZE)
    bands = np.frombuffer(signature, "<u8", BANDS, HEADER_SIZE)
    return count, hashes, bands


def _search_keys(bands: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """One search key per band value (the last axis holds the 32 bands)."""
    keys: npt.NDArray[np.uint64] = _BAND_NUMBERS | (bands >> _VALUE_SHIFT)
    return keys


class MinHashStoryIndex:
    """In-memory index of open stories by signature (what the store calls in its
    transaction). ``find`` returns the id of the most similar known story that is a
    near-duplicate of ``signature``, else ``None``; ``add`` registers (or re-points) a
    story; ``remove`` forgets one.

    Layout: a table of signatures (one row per story), and the search keys of every
    story's bands in one sorted array (``searchsorted`` finds all 32 bands' candidates
    at once); the few stories added since the last merge are compared directly. A
    search key drops the band value's 6 lowest bits, so each candidate's band is then
    compared whole: the candidates are exactly the stories sharing a band value.
    """

    def __init__(self, max_stories: int = 20_000) -> None:
        self.max_stories = max_stories
        self._slot_of: OrderedDict[int, int] = OrderedDict()  # story id → row, oldest first
        self._story_at: list[int] = []  # row → story id (-1: free or forgotten)
        self._free: list[int] = []  # rows free for reuse
        self._dead: list[int] = []  # rows forgotten since the last merge (keys still point)
        self._hashes: npt.NDArray[np.uint32] = np.zeros((0, NUM_HASHES), "<u4")
        self._counts: npt.NDArray[np.float64] = np.zeros(0, np.float64)
        self._alive: npt.NDArray[np.bool_] = np.zeros(0, np.bool_)
        self._keys: npt.NDArray[np.uint64] = np.zeros(0, np.uint64)  # sorted search keys
        self._key_rows: npt.NDArray[np.int32] = np.zeros(0, np.int32)  # … and their rows
        self._wait: _Rows = np.zeros(_MERGE_AT, np.intp)  # rows added since the last merge
        self._waiting = 0  # … how many

    def __len__(self) -> int:
        return len(self._slot_of)

    def find(self, signature: bytes) -> int | None:
        """The story this signature belongs to, or ``None`` (also for unusable input)."""
        if self._keys.size or not self._slot_of or len(signature) != SIZE:
            return self.find_many([signature])[0]
        return self._find_waiting(signature) if signature[0] == VERSION else None

    def _find_waiting(self, signature: bytes) -> int | None:
        """:meth:`find` when every story waits to be merged (a small index, such as one
        poll's own stories): one comparison with each, the same rule and tie-break."""
        waiting = self._wait[: self._waiting]
        bands = np.frombuffer(signature, "<u8", BANDS, HEADER_SIZE)
        shares = (self._hashes[waiting].view("<u8") == bands).any(1) & self._alive[waiting]
        rows = waiting[shares]
        if not rows.size:
            return None
        count = float(int.from_bytes(signature[1:HEADER_SIZE], "little"))
        ok, jaccard = self._confirm(bands.view("<u4"), count, rows)
        if not ok.any():
            return None
        story_at = self._story_at
        best: tuple[float, int] = max(
            (j, story_at[row])
            for j, row in zip(jaccard[ok].tolist(), rows[ok].tolist(), strict=True)
        )
        return best[1]

    def find_many(self, signatures: Sequence[bytes]) -> list[int | None]:
        """:meth:`find` for each signature, against the index as it is now, in a few
        array operations for all of them (one poll's items): the candidates sharing a
        band, confirmed by the rule, the highest Jaccard (then story id) picked."""
        answers: list[int | None] = [None] * len(signatures)
        usable = [i for i, sig in enumerate(signatures) if len(sig) == SIZE and sig[0] == VERSION]
        if not usable or not self._slot_of:
            return answers
        table = np.frombuffer(b"".join(signatures[i] for i in usable), np.uint8)
        table = table.reshape(len(usable), SIZE)[:, HEADER_SIZE:]
        hashes = np.ascontiguousarray(table).view("<u4")  # one row of 64 per query
        counts = np.array([int.from_bytes(signatures[i][1:HEADER_SIZE], "little") for i in usable])
        query, rows = self._candidate_pairs(hashes.view("<u8"))
        if not rows.size:
            return answers
        ok, jaccard = self._confirm(hashes[query], counts[query].astype(np.float64), rows)
        query, rows, jaccard = query[ok], rows[ok], jaccard[ok]
        if not rows.size:
            return answers
        story_at = self._story_at
        stories = np.array([story_at[row] for row in rows.tolist()], np.int64)
        # per query: the highest Jaccard, then the highest story id (the last after sorting)
        order = np.lexsort((stories, jaccard, query))
        last = np.flatnonzero(np.append(query[order][1:] != query[order][:-1], True))
        for q, story in zip(query[order][last], stories[order][last], strict=True):
            answers[usable[int(q)]] = int(story)
        return answers

    def _confirm(
        self,
        hashes: npt.NDArray[np.uint32],
        counts: float | npt.NDArray[np.float64],
        rows: _Rows,
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
        """Which candidate ``rows`` are near-duplicates of their queries (``hashes``,
        ``counts``: one query's, or one per row), and each candidate's estimated Jaccard."""
        equal = np.count_nonzero(self._hashes[rows] == hashes, axis=1)
        jaccard: npt.NDArray[np.float64] = equal / NUM_HASHES
        return _near_duplicates(jaccard, counts, self._counts[rows]), jaccard

    def _candidate_pairs(self, bands: npt.NDArray[np.uint64]) -> tuple[_Rows, _Rows]:
        """(query, row) pairs: each live row sharing a band value with a query's
        ``bands`` (one row of 32 per query); a pair may come more than once."""
        queries: list[_Rows] = []
        found: list[_Rows] = []
        n = len(bands)
        if self._keys.size:
            keys = _search_keys(bands).ravel()
            order = np.argsort(keys)  # sorted needles search a large array faster
            lengths = np.empty_like(order)
            lo = np.empty_like(order)
            lo[order] = np.searchsorted(self._keys, keys[order], "left")
            lengths[order] = np.searchsorted(self._keys, keys[order], "right")
            lengths -= lo
            total = int(lengths.sum())
            if total:
                ends = np.cumsum(lengths)
                at = np.arange(total) + np.repeat(lo - (ends - lengths), lengths)
                rows: _Rows = self._key_rows[at].astype(np.intp)
                slot = np.repeat(np.arange(n * BANDS, dtype=np.intp), lengths)  # query, band
                query, band = np.divmod(slot, BANDS)
                # the key dropped 6 bits of the band value: compare that band whole (a row
                # equal on another band is found through that band's key too)
                same = self._hashes.view("<u8")[rows, band] == bands.ravel()[slot]
                queries.append(query[same])
                found.append(rows[same])
        if self._waiting:
            waiting = self._wait[: self._waiting]
            shares = (self._hashes[waiting].view("<u8")[None, :, :] == bands[:, None, :]).any(2)
            query, at = np.nonzero(shares)
            queries.append(query.astype(np.intp))
            found.append(waiting[at])
        if not found:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        query, rows = np.concatenate(queries), np.concatenate(found)
        alive = self._alive[rows]
        return query[alive], rows[alive]

    def add(self, story_id: int, signature: bytes) -> None:
        """Register ``story_id`` under ``signature`` (replacing its previous one)."""
        parts = _parts(signature)
        if parts is None:
            log.debug("story %s has no usable signature; not indexed", story_id)
            return
        self.remove(story_id)
        row = self._take_row()
        count, hashes, bands = parts
        self._hashes[row] = hashes
        self._counts[row] = count
        self._alive[row] = True
        self._story_at[row] = story_id
        self._slot_of[story_id] = row
        while len(self._slot_of) > self.max_stories:
            self.remove(next(iter(self._slot_of)))
        self._wait[self._waiting] = row
        self._waiting += 1
        if self._waiting == _MERGE_AT:
            self._merge()

    def remove(self, story_id: int) -> None:
        """Forget a story (closed, or outside the story window)."""
        row = self._slot_of.pop(story_id, None)
        if row is None:
            return
        self._story_at[row] = -1
        self._alive[row] = False
        self._dead.append(row)

    def _merge(self) -> None:
        """Move the waiting stories into the sorted keys (one linear pass: the waiting
        keys are sorted, then inserted) and drop the forgotten; their rows become free."""
        keys, rows = self._keys, self._key_rows
        if self._dead:  # forgotten stories leave the sorted keys (one pass, only then)
            keep = self._alive[rows]
            keys, rows = keys[keep], rows[keep]
        waiting = self._wait[: self._waiting]
        waiting = waiting[self._alive[waiting]]
        new_keys = _search_keys(self._hashes[waiting].view("<u8")).ravel()
        order = np.argsort(new_keys, kind="stable")
        new_keys = new_keys[order]
        new_rows = np.repeat(waiting, BANDS)[order].astype(np.int32)
        at = np.searchsorted(keys, new_keys, "right")
        self._keys = np.insert(keys, at, new_keys)
        self._key_rows = np.insert(rows, at, new_rows)
        self._waiting = 0
        self._free.extend(self._dead)
        self._dead.clear()

    def _take_row(self) -> int:
        if self._free:
            return self._free.pop()
        row = len(self._story_at)
        if row == len(self._hashes):
            size = max(_FIRST_CAPACITY, 2 * row)
            self._hashes = _grown(self._hashes, size)
            self._counts = _grown(self._counts, size)
            self._alive = _grown(self._alive, size)
        self._story_at.append(-1)
        return row


_A = TypeVar("_A", bound=np.generic)


def _grown(array: npt.NDArray[_A], size: int) -> npt.NDArray[_A]:
    grown = np.zeros((size, *array.shape[1:]), array.dtype)
    grown[: len(array)] = array
    return grown


def _near_duplicates(
    jaccard: npt.NDArray[np.float64],
    count: float | npt.NDArray[np.float64],
    counts: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Which candidates are one story with the item: the rule of ``dedupe._same``,
    over arrays (estimated Jaccard, or containment of the shorter item's shingles)."""
    small = np.minimum(counts, count)
    large = np.maximum(counts, count)
    with np.errstate(divide="ignore", invalid="ignore"):
        containment = jaccard * (small + large) / ((1.0 + jaccard) * small)
    contained = (
        (small >= MIN_SHINGLES_FOR_CONTAINMENT) & (jaccard > 0) & (containment >= MIN_CONTAINMENT)
    )
    near: npt.NDArray[np.bool_] = (jaccard >= MIN_JACCARD) | contained
    return near
