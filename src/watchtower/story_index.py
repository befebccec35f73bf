"""The daemon's story index: known stories by MinHash signature, in near-constant time.

:class:`MinHashStoryIndex` answers "which known story is this item a near-duplicate
of?" with the rule of :func:`watchtower.dedupe.same_story`: LSH banding (32 bands of 2
hashes) proposes candidates, then every candidate is confirmed at once, as one array
comparison over a table of signatures (a crowded band, such as one shared by hundreds
of items with the same stock phrase, costs one vectorised comparison, not hundreds of
Python loops). The answer is the candidate with the highest estimated Jaccard
similarity (the highest story id on a tie), exactly as the pairwise rule would pick it.

Memory: about 1 kB per story (a row of 64 ``uint32`` hashes, the shingle count and one
integer key per band). At most ``max_stories`` stories are held, forgetting the oldest
added first; the table grows by doubling, so a small index (one poll's own stories) is
small. Not thread-safe: the store uses it from one writer.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

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
    VERSION,
)

log = logging.getLogger(__name__)

_FIRST_CAPACITY = 16
if ROWS != 2:  # a band is read as one 64-bit integer below
    raise RuntimeError(f"story_index needs bands of 2 hashes, not {ROWS}")
_SIZE = HEADER_SIZE + 4 * NUM_HASHES


def _parts(signature: bytes) -> tuple[int, npt.NDArray[np.uint32], list[int]] | None:
    """(shingle count, the 64 hashes, the 32 band values) of a usable signature.

    A band's value is its :data:`ROWS` (2) consecutive 32-bit hashes read as one 64-bit
    integer, so the band tables can be plain dicts keyed by it."""
    if len(signature) != _SIZE or signature[0] != VERSION:
        return None
    count = int.from_bytes(signature[1:HEADER_SIZE], "little")
    hashes = np.frombuffer(signature, "<u4", NUM_HASHES, HEADER_SIZE)
    bands = np.frombuffer(signature, "<u8", BANDS, HEADER_SIZE).tolist()
    return count, hashes, bands


class MinHashStoryIndex:
    """In-memory index of open stories by signature (what the store calls in its
    transaction). ``find`` returns the id of the most similar known story that is a
    near-duplicate of ``signature``, else ``None``; ``add`` registers (or re-points) a
    story; ``remove`` forgets one.
    """

    def __init__(self, max_stories: int = 20_000) -> None:
        self.max_stories = max_stories
        self._slot_of: OrderedDict[int, int] = OrderedDict()  # story id → row, oldest first
        self._story_at: list[int] = []  # row → story id (-1: free)
        self._bands_at: list[list[int]] = []  # row → its band values
        self._free: list[int] = []
        self._hashes: npt.NDArray[np.uint32] = np.zeros((0, NUM_HASHES), np.uint32)
        self._counts: npt.NDArray[np.float64] = np.zeros(0, np.float64)
        # one table per band: band value → row(s)
        self._bands: list[dict[int, int | set[int]]] = [{} for _ in range(BANDS)]

    def __len__(self) -> int:
        return len(self._slot_of)

    def find(self, signature: bytes) -> int | None:
        """The story this signature belongs to, or ``None`` (also for unusable input)."""
        parts = _parts(signature) if self._slot_of else None
        if parts is None:
            return None
        count, hashes, bands = parts
        rows: set[int] = set()
        for table, value in zip(self._bands, bands, strict=True):
            found = table.get(value)
            if found is None:
                continue
            if isinstance(found, int):
                rows.add(found)
            else:
                rows.update(found)
        if not rows:
            return None
        picked = np.fromiter(rows, np.intp, len(rows))
        equal = np.count_nonzero(self._hashes[picked] == hashes, axis=1)
        jaccard = equal / NUM_HASHES
        ok = _near_duplicates(jaccard, float(count), self._counts[picked])
        if not ok.any():
            return None
        best_j = jaccard[ok].max()
        tied = picked[ok & (jaccard == best_j)]
        return max(self._story_at[int(row)] for row in tied)

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
        self._story_at[row] = story_id
        self._bands_at[row] = bands
        self._slot_of[story_id] = row
        for table, value in zip(self._bands, bands, strict=True):
            held = table.get(value)
            if held is None:
                table[value] = row
            elif isinstance(held, int):
                table[value] = {held, row}
            else:
                held.add(row)
        while len(self._slot_of) > self.max_stories:
            self.remove(next(iter(self._slot_of)))

    def remove(self, story_id: int) -> None:
        """Forget a story (closed, or outside the story window)."""
        row = self._slot_of.pop(story_id, None)
        if row is None:
            return
        for table, value in zip(self._bands, self._bands_at[row], strict=True):
            held = table.get(value)
            if held is None:
                continue
            if isinstance(held, int):
                if held == row:
                    del table[value]
                continue
            held.discard(row)
            if len(held) == 1:
                table[value] = next(iter(held))
            elif not held:
                del table[value]
        self._story_at[row] = -1
        self._bands_at[row] = []
        self._free.append(row)

    def _take_row(self) -> int:
        if self._free:
            return self._free.pop()
        row = len(self._story_at)
        if row == len(self._hashes):
            size = min(max(_FIRST_CAPACITY, 2 * row), self.max_stories + 1)
            size = max(size, row + 1)
            grown = np.zeros((size, NUM_HASHES), np.uint32)
            grown[:row] = self._hashes
            counts = np.zeros(size, np.float64)
            counts[:row] = self._counts
            self._hashes, self._counts = grown, counts
        self._story_at.append(-1)
        self._bands_at.append([])
        return row


def _near_duplicates(
    jaccard: npt.NDArray[np.float64], count: float, counts: npt.NDArray[np.float64]
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
