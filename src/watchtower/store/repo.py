"""The Watchtower store: one :class:`Store` per process over SQLite or PostgreSQL.

Contract:

* :meth:`Store.write_poll` writes a poll's plan (:mod:`watchtower.alerting`): new items,
  their stories, any new alerts and their pending deliveries (the outbox) and the
  source's new fetch state in ONE transaction. Items are unique per (source, guid) and
  alerts per story, so replaying a poll stores nothing and sends nothing twice.
* The outbox is claimed with a lease (:meth:`Store.claim_deliveries`): on PostgreSQL
  ``SELECT … FOR UPDATE SKIP LOCKED``, on SQLite a conditional UPDATE inside
  ``BEGIN IMMEDIATE``. A row is never handed to two claimers while its lease runs; a
  ``sending`` row whose lease has expired is due again (at-least-once delivery).
* Every database failure is raised as :class:`watchtower.errors.StoreError` with a short
  message and no secrets.

* Source health (``health``): the state last reported per source, its events and their
  own outbox are written in ONE transaction (:meth:`Store.apply_health`).

The facade :class:`Store` is assembled from one part per entity (``sources``,
``polls`` for items and stories, ``alerts``, ``deliveries``, ``feedback``, ``health``) over
``base``, which owns the engine and the lock. The store is the single writer: every
transaction takes its one lock (a re-entrant thread lock; :meth:`Store.writer` holds
it across several calls). Methods are synchronous; from asyncio call them through
:meth:`Store.run`, which also queues the callers of one event loop so they do not each
hold a thread while they wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

from watchtower.alerting import StoryIndex
from watchtower.store.alerts import AlertsMixin
from watchtower.store.base import ExactStoryIndex
from watchtower.store.deliveries import DeliveriesMixin
from watchtower.store.digests import DigestsMixin
from watchtower.store.engine import make_engine, mask_url, migrate
from watchtower.store.feedback import FeedbackMixin
from watchtower.store.health import BeatMixin, HealthMixin
from watchtower.store.polls import PollsMixin, new_message_id
from watchtower.store.sources import SourcesMixin

__all__ = ["ExactStoryIndex", "Store", "StoryIndex", "new_message_id"]

log = logging.getLogger(__name__)


class Store(
    PollsMixin,
    SourcesMixin,
    AlertsMixin,
    DeliveriesMixin,
    DigestsMixin,
    FeedbackMixin,
    HealthMixin,
    BeatMixin,
):
    """Access to the Watchtower database. Create with :meth:`open`; close when done."""

    @classmethod
    def open(
        cls,
        url: str,
        *,
        story_index_factory: Callable[[], StoryIndex] | None = None,
    ) -> Store:
        """Open ``url``, apply migrations up to head and load the story index.

        Safe to call on an existing, up-to-date database. Raises ``StoreError``.
        """
        engine = make_engine(url)
        try:
            migrate(engine)
            store = cls(engine, story_index_factory=story_index_factory)
        except BaseException:
            engine.dispose()
            raise
        log.info("store open at %s", mask_url(engine.url))
        return store

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
