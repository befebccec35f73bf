"""Near-duplicate detection: one story for the same news on several outlets.

:func:`signature` turns an item's title and text into a MinHash signature over word
3-shingles (lower-cased words, so punctuation, case and spacing do not matter). Two
signatures estimate the Jaccard similarity of the items' shingle sets: the share of
positions with equal minimum hashes. The same wire story reworded slightly shares most
of its shingles (Jaccard well above 0.3); two different stories on the same subject share
only stock phrases ("the UN special rapporteur on North Korea", Jaccard below 0.1).

:class:`MinHashStoryIndex` finds a known story for a signature in constant time with LSH
banding (32 bands of 2 hashes: a pair with Jaccard 0.3 becomes a candidate with
probability 0.95), then confirms each candidate by its estimated Jaccard similarity,
or by containment when one item is a shortened copy of the other (a feed summary of a
longer article).

Signature layout (little-endian): version byte, uint32 shingle count, 64 × uint32
minimum hashes. An empty title and text give ``b""`` (the store then starts a story
of its own). Signatures are stable across processes and versions of Python.
"""

from __future__ import annotations

import logging
import re
import struct
from collections import OrderedDict
from hashlib import blake2b

log = logging.getLogger(__name__)

VERSION = 2
NUM_HASHES = 64
BANDS = 32
ROWS = NUM_HASHES // BANDS
SHINGLE = 3
MIN_JACCARD = 0.35  # estimated Jaccard at or above which two items are one story
MIN_CONTAINMENT = 0.7  # share of the shorter item's shingles found in the longer one
MIN_SHINGLES_FOR_CONTAINMENT = 12
_HEADER = struct.Struct("<BI")
_BODY = struct.Struct(f"<{NUM_HASHES}I")
_WORD = re.compile(r"[^\W_]+")
_PERSON = b"wt-oph-minhash"
_MASK = NUM_HASHES - 1  # NUM_HASHES is a power of two
_EMPTY = 1 << 32  # above every 32-bit value: marks a bin no shingle fell into
_SALT = 0x9E3779B1  # odd constant: distinct values for bins borrowed from different distances


def _grams(title: str, text: str) -> set[bytes]:
    words = _WORD.findall(f"{title}\n{text}".lower())
    if len(words) < SHINGLE:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + SHINGLE]).encode() for i in range(len(words) - SHINGLE + 1)}


def signature(title: str, text: str) -> bytes:
    """MinHash signature of an item (see the module docstring); ``b""`` if it has no words.

    One-permutation MinHash: each shingle is hashed once (8-byte BLAKE2b); its low bits
    pick one of the 64 bins and its high 32 bits compete for that bin's minimum. Empty
    bins (short items) borrow the next non-empty bin's value, salted by the distance
    ("rotation" densification, Shrivastava & Li 2014), so every position is comparable.
    """
    grams = _grams(title, text)
    if not grams:
        return b""
    bins = [_EMPTY] * NUM_HASHES
    for gram in grams:
        value = int.from_bytes(blake2b(gram, digest_size=8, person=_PERSON).digest(), "little")
        slot = value & _MASK
        high = value >> 32
        if high < bins[slot]:
            bins[slot] = high
    return _HEADER.pack(VERSION, len(grams)) + _BODY.pack(*_densify(bins))


def _densify(bins: list[int]) -> list[int]:
    if _EMPTY not in bins:
        return bins
    filled = list(bins)
    for i, value in enumerate(bins):
        if value != _EMPTY:
            continue
        for distance in range(1, NUM_HASHES):
            source = bins[(i + distance) % NUM_HASHES]
            if source != _EMPTY:
                filled[i] = (source + distance * _SALT) & 0xFFFFFFFF
                break
    return filled


def _unpack(sig: bytes) -> tuple[int, tuple[int, ...]] | None:
    if len(sig) != _HEADER.size + _BODY.size or sig[0] != VERSION:
        return None
    _version, count = _HEADER.unpack_from(sig)
    return count, _BODY.unpack_from(sig, _HEADER.size)


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures (0.0 if either is unusable)."""
    ua, ub = _unpack(a), _unpack(b)
    if ua is None or ub is None:
        return 0.0
    return sum(x == y for x, y in zip(ua[1], ub[1], strict=True)) / NUM_HASHES


def same_story(a: bytes, b: bytes) -> bool:
    """True when two signatures are near-duplicates (Jaccard or containment test)."""
    ua, ub = _unpack(a), _unpack(b)
    if ua is None or ub is None:
        return False
    return _same(ua, ub)[0]


def _same(ua: tuple[int, tuple[int, ...]], ub: tuple[int, tuple[int, ...]]) -> tuple[bool, float]:
    j = sum(x == y for x, y in zip(ua[1], ub[1], strict=True)) / NUM_HASHES
    if j >= MIN_JACCARD:
        return True, j
    small, large = sorted((ua[0], ub[0]))
    if small >= MIN_SHINGLES_FOR_CONTAINMENT and j > 0:
        # |A∩B| = J(|A|+|B|)/(1+J); containment of the smaller set
        containment = j * (small + large) / ((1.0 + j) * small)
        if containment >= MIN_CONTAINMENT:
            return True, j
    return False, j


class MinHashStoryIndex:
    """In-memory index of open stories by signature (what the store calls in its
    transaction). ``find`` returns the id of the most similar known story that is a
    near-duplicate of ``signature``, else ``None``; ``add`` registers (or re-points) a
    story. Holds at most ``max_stories`` stories (the store loads as many at start),
    forgetting the oldest added first. Not thread-safe: the store uses it from one writer.

    Memory: about 3 kB per story (the packed 256-byte signature and one integer key per
    band); a tuple of hashes and a set per band cost about 13 kB before.
    """

    def __init__(self, max_stories: int = 20_000) -> None:
        self.max_stories = max_stories
        self._sigs: OrderedDict[int, tuple[int, bytes]] = OrderedDict()
        self._bands: dict[int, int | set[int]] = {}

    def __len__(self) -> int:
        return len(self._sigs)

    @staticmethod
    def _band_keys(hashes: tuple[int, ...]) -> list[int]:
        return [(i << 64) | (hashes[i * ROWS] << 32) | hashes[i * ROWS + 1] for i in range(BANDS)]

    def find(self, signature: bytes) -> int | None:
        """The story this signature belongs to, or ``None`` (also for unusable input)."""
        unpacked = _unpack(signature)
        if unpacked is None:
            return None
        candidates: set[int] = set()
        for key in self._band_keys(unpacked[1]):
            found = self._bands.get(key)
            if isinstance(found, int):
                candidates.add(found)
            elif found:
                candidates.update(found)
        best: tuple[float, int] | None = None
        for story_id in candidates:
            count, body = self._sigs[story_id]
            ok, j = _same(unpacked, (count, _BODY.unpack(body)))
            if ok and (best is None or (j, story_id) > best):
                best = (j, story_id)
        return best[1] if best else None

    def add(self, story_id: int, signature: bytes) -> None:
        """Register ``story_id`` under ``signature`` (replacing its previous one)."""
        unpacked = _unpack(signature)
        if unpacked is None:
            log.debug("story %s has no usable signature; not indexed", story_id)
            return
        self.remove(story_id)
        self._sigs[story_id] = (unpacked[0], signature[_HEADER.size :])
        for key in self._band_keys(unpacked[1]):
            held = self._bands.get(key)
            if held is None:
                self._bands[key] = story_id
            elif isinstance(held, int):
                if held != story_id:
                    self._bands[key] = {held, story_id}
            else:
                held.add(story_id)
        while len(self._sigs) > self.max_stories:
            self.remove(next(iter(self._sigs)))

    def remove(self, story_id: int) -> None:
        """Forget a story (closed, or outside the story window)."""
        old = self._sigs.pop(story_id, None)
        if old is None:
            return
        for key in self._band_keys(_BODY.unpack(old[1])):
            held = self._bands.get(key)
            if held is None:
                continue
            if isinstance(held, int):
                if held == story_id:
                    del self._bands[key]
                continue
            held.discard(story_id)
            if len(held) == 1:
                self._bands[key] = next(iter(held))
            elif not held:
                del self._bands[key]
