"""Unchanged polls (304) written in batches: one transaction for many sources.

A 304 brings nothing to store but the source's new state (validators, last success,
next due time, a clean health record). :class:`NotModifiedBatch` collects those
states and hands them to the store's writer thread in one call
(:meth:`watchtower.store.Store.record_not_modified`, one executemany UPDATE), so a
304 costs its request and a share of one transaction — no store round trip of its own.

When a batch is written:

* ``delay`` seconds after its first state arrived (a tick), or at once when it holds
  ``max_size`` states;
* on :meth:`NotModifiedBatch.flush`: ``run --once`` flushes after its polls and before
  the health check, the daemon's health check flushes first, and the runtime flushes
  on close (shutdown);
* before any other write of the same source (:meth:`NotModifiedBatch.flush_for`), so
  a failure recorded after a 304 is never overwritten by it: the store sees a
  source's polls in the order they finished.

Crash safety: states waiting here are only in memory. A crash (SIGKILL, power loss)
loses at worst the 304s of the last ``delay`` seconds, i.e. their new validators,
``last_success_at`` and ``next_due_at``: such a source keeps its previous state and is
simply polled again (a 200 then finds its items already stored). Items, alerts and
deliveries are never batched — they are written in the poll's own transaction — and
a failure is written at once (after flushing the source's waiting 304). A batch the
store refuses is logged and dropped, and ``on_lost`` is told its source names (the
pipeline then forgets their cached state and reads the store's again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from watchtower.errors import StoreError
from watchtower.models import NotModified

if TYPE_CHECKING:
    from watchtower.store import Store

log = logging.getLogger(__name__)

#: Seconds a 304's state may wait for its batch.
FLUSH_DELAY = 1.0
#: Most states in one transaction.
MAX_BATCH = 1000


class NotModifiedBatch:
    """The 304 states not yet written, by source name (a newer state replaces an older
    one). One instance per pipeline; used from one event loop at a time."""

    def __init__(
        self,
        store: Store,
        *,
        delay: float = FLUSH_DELAY,
        max_size: int = MAX_BATCH,
        on_lost: Callable[[Iterable[str]], None] = lambda names: None,
    ) -> None:
        self._store = store
        self._delay = delay
        self._max_size = max(1, max_size)
        self._on_lost = on_lost
        self._waiting: dict[str, NotModified] = {}
        self._writing: frozenset[str] = frozenset()
        self._lock = asyncio.Lock()
        self._timer: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, poll: NotModified) -> None:
        """Queue ``poll`` (no await, no thread); written within ``delay`` seconds."""
        self._waiting[poll.name] = poll
        if len(self._waiting) % self._max_size == 0:  # a full batch: write it now
            self._kick()
            return
        loop = asyncio.get_running_loop()
        if self._timer is None or self._timer[0] is not loop:  # none yet, or a closed loop's
            self._timer = (loop, loop.call_later(self._delay, self._on_timer))

    def holds(self, name: str) -> bool:
        """Whether a state of ``name`` is waiting or being written."""
        return name in self._waiting or name in self._writing

    async def flush_for(self, name: str) -> None:
        """Write the batch first if it holds a state of ``name`` (call before any other
        write of that source)."""
        if self.holds(name):
            await self.flush()

    async def flush(self) -> None:
        """Write every waiting state now (and wait for a batch being written)."""
        self._cancel_timer()
        async with self._lock:
            while self._waiting:
                await self._write_some()

    def _on_timer(self) -> None:
        self._timer = None
        self._kick()

    def _kick(self) -> None:
        task = asyncio.get_running_loop().create_task(self.flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer[1].cancel()
            self._timer = None

    async def _write_some(self) -> None:
        names = list(self._waiting)[: self._max_size]
        batch = [self._waiting.pop(name) for name in names]
        self._writing = frozenset(names)
        try:
            await self._store.run(self._store.record_not_modified, batch)
        except StoreError as exc:
            log.warning("%d unchanged polls not recorded (%s); polled again", len(batch), exc)
            self._on_lost(names)
        except BaseException:
            # Cancelled (the loop is closing): the write may or may not have happened in
            # the store's thread. It is idempotent, so keep the states for the next flush
            # unless a newer one arrived meanwhile.
            for poll in batch:
                self._waiting.setdefault(poll.name, poll)
            raise
        finally:
            self._writing = frozenset()
