"""Polls' writes committed together: one transaction for the writes that wait.

The store has one writer. While it writes one poll, other polls finish fetching and
parsing and wait their turn; :class:`WriteBatch` hands every write waiting at that
moment to the store's thread in one call (:meth:`watchtower.store.Store.write_together`),
which runs them in order in ONE transaction and commits once.
A commit per batch instead of one per poll: SQLite writes the pages the polls share
(indexes, the full-text index) to its log once.

Each write keeps its own outcome, as if it had run alone:

* the writes run in the order they were submitted (the store sees a source's polls in
  the order they finished), each seeing the ones before it;
* a write that raises rolls its batch back, and then every write of the batch runs
  again in a transaction of its own, in order: its caller gets the error, the others
  commit (writes are store calls, so running one again does what it did the first time);
* a failed commit gives every write of its batch the store's error (nothing of them is
  stored, as for a single write that fails);
* a write whose caller was cancelled before its batch started is not run.

A write that waits costs no latency: the first one starts a batch at once, and the
writes arriving meanwhile form the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from watchtower.store import Store

T = TypeVar("T")

#: Most writes in one transaction.
MAX_BATCH = 16


class WriteBatch:
    """The writes waiting for the store, in order. Used from one event loop at a time."""

    def __init__(self, store: Store, *, max_size: int = MAX_BATCH) -> None:
        self.store = store
        self.max_size = max_size
        self._waiting: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, write: Callable[[], T]) -> T:
        """Run ``write`` (a function making store calls) in the store's thread, in a
        transaction shared with the writes waiting beside it; its result, or its error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append((write, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch = [(w, f) for w, f in self._waiting[: self.max_size] if not f.done()]
            del self._waiting[: self.max_size]
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]]) -> None:
        try:
            written = await self.store.run(self.store.write_together, [w for w, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the commit failed: no write of the batch is stored
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), one in zip(batch, written, strict=True):
            if future.done():
                continue
            if one.ok:
                future.set_result(one.value)
            else:
                assert one.error is not None
                future.set_exception(one.error)
