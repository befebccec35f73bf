"""Which units of delivery work this process is sending right now.

A digest stays ``sending`` in the store while its email is on the wire, and the same
state also means "left half-sent by a crash or an outage; re-send it". Without
knowing what is in flight, the delivery worker's resume pass would re-send a digest
that the digest job is still sending (a slow mail server made every digest go out
twice, with the same Message-ID). :class:`InFlight` is that knowledge: a thread-safe
set of keys, claimed for the duration of one send.

It covers one process only; separate processes on one store are kept apart by the
single-daemon rule.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

__all__ = ["DIGESTS", "InFlight"]


class InFlight:
    """A set of keys, each claimed by at most one sender at a time."""

    def __init__(self) -> None:
        self._keys: set[Hashable] = set()
        self._lock = threading.Lock()

    @contextmanager
    def claim(self, key: Hashable) -> Iterator[bool]:
        """Yield True and hold ``key`` until the block ends, or yield False at once
        (holding nothing) when another sender holds it."""
        with self._lock:
            if key in self._keys:
                mine = False
            else:
                self._keys.add(key)
                mine = True
        try:
            yield mine
        finally:
            if mine:
                with self._lock:
                    self._keys.discard(key)

    def busy(self, key: Hashable) -> bool:
        """Whether ``key`` is held right now."""
        with self._lock:
            return key in self._keys


#: Digest ids (``digest.id``) being sent by this process.
DIGESTS = InFlight()
