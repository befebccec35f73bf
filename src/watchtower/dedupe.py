"""Near-duplicate detection: one story for the same news on several outlets.

:func:`signature` turns an item's title and text into a MinHash signature over word
3-shingles (lower-cased words, so punctuation, case and spacing do not matter). Two
signatures estimate the Jaccard similarity of the items' shingle sets: the share of
positions with equal minimum hashes. The same wire story reworded slightly shares most
of its shingles (Jaccard well above 0.3); two different stories on the same subject share
only stock phrases ("the UN special rapporteur on North Korea", Jaccard below 0.1).

:func:`same_story` is the rule: estimated Jaccard similarity, or containment when one
item is a shortened copy of the other (a feed summary of a longer article).
:class:`watchtower.story_index.MinHashStoryIndex` applies it to many known stories at
once, with LSH banding (:data:`BANDS` bands of :data:`ROWS` hashes: a pair with Jaccard
0.3 becomes a candidate with probability 0.95).

Signature layout (little-endian): version byte, uint32 shingle count, 64 × uint32
minimum hashes. An empty title and text give ``b""`` (the store then starts a story
of its own). Signatures are stable across processes and versions of Python.
"""

from __future__ import annotations

import logging
import re
import struct
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
HEADER_SIZE = _HEADER.size  # version byte and shingle count, before the 64 hashes
_BODY = struct.Struct(f"<{NUM_HASHES}I")
SIZE = _HEADER.size + _BODY.size  # a usable signature, whole
_WORD = re.compile(r"[^\W_]+")
_PERSON = b"wt-oph-minhash"
_MASK = NUM_HASHES - 1  # NUM_HASHES is a power of two
_EMPTY = 1 << 32  # above every 32-bit value: marks a bin no shingle fell into
_SALT = 0x9E3779B1  # odd constant: distinct values for bins borrowed from different distances
_HASHER = blake2b(digest_size=8, person=_PERSON)  # copied for each shingle


def _grams(title: str, text: str) -> set[bytes]:
    words = _WORD.findall(f"{title}\n{text}".lower())
    if len(words) < SHINGLE:
        return {" ".join(words).encode()} if words else set()
    encoded = " ".join(words).encode().split(b" ")  # one encode, not one per shingle
    shifted = (encoded[i:] for i in range(SHINGLE))
    return set(map(b" ".join, zip(*shifted, strict=False)))  # the shortest ends the zip


def signature(title: str, text: str) -> bytes:
    """MinHash signature of an item (see the module docstring); ``b""`` if it has no words.

    One-permutation MinHash: each shingle is hashed once (8-byte BLAKE2b); its low bits
    pick one of the 64 bins and its high 32 bits compete for that bin's minimum (one
    array operation over all of an item's shingles). Empty bins (short items) borrow the
    next non-empty bin's value, salted by the distance ("rotation" densification,
    Shrivastava & Li 2014), so every position is comparable.
    """
    grams = _grams(title, text)
    if not grams:
        return b""
    import numpy as np  # loaded once, by the process that first signs an item

    values = np.frombuffer(_digests(grams), dtype="<u8")
    bins = np.full(NUM_HASHES, _EMPTY, dtype=np.uint64)
    np.minimum.at(bins, (values & np.uint64(_MASK)).astype(np.intp), values >> np.uint64(32))
    return _HEADER.pack(VERSION, len(grams)) + _BODY.pack(*_densify(bins.tolist()))


def _digests(grams: set[bytes]) -> bytes:
    """The shingles' 8-byte BLAKE2b digests, end to end."""
    out: list[bytes] = []
    keep, fresh = out.append, _HASHER.copy
    for gram in grams:
        hasher = fresh()
        hasher.update(gram)
        keep(hasher.digest())
    return b"".join(out)


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


def unpack(sig: bytes) -> tuple[int, tuple[int, ...]] | None:
    """(shingle count, the 64 minimum hashes) of a signature; ``None`` if unusable."""
    if len(sig) != SIZE or sig[0] != VERSION:
        return None
    _version, count = _HEADER.unpack_from(sig)
    return count, _BODY.unpack_from(sig, _HEADER.size)


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures (0.0 if either is unusable)."""
    ua, ub = unpack(a), unpack(b)
    if ua is None or ub is None:
        return 0.0
    return sum(x == y for x, y in zip(ua[1], ub[1], strict=True)) / NUM_HASHES


def same_story(a: bytes, b: bytes) -> bool:
    """True when two signatures are near-duplicates (Jaccard or containment test)."""
    ua, ub = unpack(a), unpack(b)
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
