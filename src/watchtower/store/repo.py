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

The store is the single writer: every transaction takes its one lock (a re-entrant
thread lock; :meth:`Store.writer` holds it across several calls). Methods are
synchronous; from asyncio call them through :meth:`Store.run`, which also queues the
callers of one event loop so they do not each hold a thread while they wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel

from watchtower import alerting, models
from watchtower.alerting import KnownStory, PollPlan, StoryIndex
from watchtower.errors import StoreError
from watchtower.store import tables
from watchtower.store.engine import make_engine, mask_url, migrate, store_error
from watchtower.store.polls import PlanWriter, known_stories, new_message_id, stored_guids
from watchtower.store.views import AlertView, DeliveryJob, SourceHealth, SourceLink

__all__ = ["ExactStoryIndex", "Store", "StoryIndex", "new_message_id"]

log = logging.getLogger(__name__)
_R = TypeVar("_R")

_T = SQLModel.metadata.tables
SOURCE = _T[tables.Source.__tablename__]
ITEM = _T[tables.Item.__tablename__]
STORY = _T[tables.Story.__tablename__]
ALERT = _T[tables.Alert.__tablename__]
DELIVERY = _T[tables.Delivery.__tablename__]
SNAPSHOT = _T[tables.Snapshot.__tablename__]
CHANNEL_STATE = _T[tables.ChannelState.__tablename__]

SNAPSHOTS_KEPT = 10
#: How many of the most recently seen stories the in-memory story index holds.
STORY_INDEX_LIMIT = 20_000
_ERROR_LIMIT = 1000


class ExactStoryIndex:
    """Default :class:`StoryIndex`: signatures equal byte for byte; the newest story wins."""

    def __init__(self) -> None:
        self._stories: dict[bytes, int] = {}

    def find(self, signature: bytes) -> int | None:
        return self._stories.get(signature)

    def add(self, story_id: int, signature: bytes) -> None:
        self._stories[signature] = story_id


def _snapshot_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _state(row: Any, snapshot: str | None) -> models.SourceState:
    return models.SourceState(
        name=row.name,
        etag=row.etag,
        last_modified=row.last_modified,
        page_hash=row.page_hash,
        snapshot=snapshot,
        consecutive_failures=row.consecutive_failures,
        last_error=row.last_error,
        last_success_at=row.last_success_at,
        next_due_at=row.next_due_at,
    )


def _safe(text: str) -> str:
    """Text both databases accept: no NUL (PostgreSQL refuses it), no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _safe_opt(text: str | None) -> str | None:
    return None if text is None else _safe(text)


def _clip(text: str) -> str:
    text = _safe(text)
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 1] + "…"


def _job(row: Any) -> DeliveryJob:
    return DeliveryJob(
        id=row.id,
        alert_id=row.alert_id,
        channel=row.channel,
        message_id=row.message_id,
        attempts=row.attempts,
        created_at=row.created_at,
    )


_JOB_COLUMNS = (
    DELIVERY.c.id,
    DELIVERY.c.alert_id,
    DELIVERY.c.channel,
    DELIVERY.c.message_id,
    DELIVERY.c.attempts,
    DELIVERY.c.created_at,
)


class Store:
    """Access to the Watchtower database. Create with :meth:`open`; close when done."""

    def __init__(
        self,
        engine: Engine,
        *,
        story_index_factory: Callable[[], StoryIndex] | None = None,
    ) -> None:
        """Wrap an engine whose schema is already at head (use :meth:`open` normally)."""
        self.engine = engine
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"store: unsupported database {dialect!r}")
        self._dialect = dialect
        self._secret = str(engine.url.password) if engine.url.password else None
        self._index_factory: Callable[[], StoryIndex] = story_index_factory or ExactStoryIndex
        self._index: StoryIndex | None = None  # loaded when a poll first brings new items
        self._lock = threading.RLock()  # the single writer: every call takes it
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

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

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _tx(self, action: str) -> Iterator[Connection]:
        """One transaction (BEGIN IMMEDIATE on SQLite) under the writer lock.

        SQLAlchemy errors are raised as ``StoreError``.
        """
        try:
            with self._lock, self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise store_error(action, exc, secret=self._secret) from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A SQLModel ``Session`` inside one transaction: commit on success, else rollback.

        Use ``session.exec(select(...))`` (SQLModel deprecates ``session.execute``).
        SQLAlchemy errors are raised as ``StoreError``.
        """
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise store_error("session", exc, secret=self._secret) from exc

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the single-writer lock across several calls (read, decide, write)."""
        with self._lock:
            yield

    async def run(self, fn: Callable[..., _R], *args: object, **kwargs: object) -> _R:
        """Run ``fn`` (a store method, or a function making several calls) in a thread.

        The async side of the single-writer rule: calls from one event loop wait their
        turn here instead of each holding a thread while it waits for the lock.
        """
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.get(loop)
        if lock is None:
            lock = self._loop_locks[loop] = asyncio.Lock()
        async with lock:
            return await asyncio.to_thread(fn, *args, **kwargs)

    def _insert(self, table: sa.Table) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _story_index(self, conn: Connection) -> StoryIndex:
        """The index of recent stories, loaded on first use (inside the caller's
        transaction): a cycle of unchanged sources (all 304) never pays for it.
        """
        if self._index is None:
            index = self._index_factory()
            rows = conn.execute(
                sa.select(STORY.c.id, STORY.c.signature)
                .where(sa.func.length(STORY.c.signature) > 0)
                .order_by(STORY.c.last_seen_at.desc(), STORY.c.id.desc())
                .limit(STORY_INDEX_LIMIT)
            ).all()
            for row in reversed(rows):
                index.add(int(row.id), bytes(row.signature))
            self._index = index
        return self._index

    @staticmethod
    def _source_row(conn: Connection, name: str) -> Any:
        row = conn.execute(sa.select(SOURCE).where(SOURCE.c.name == name)).first()
        if row is None:
            raise StoreError(f"store: unknown source {name!r} (sync_sources first)")
        return row

    # ------------------------------------------------------------------ sources

    def sync_sources(self, sources: Sequence[tuple[str, str, str]]) -> None:
        """Make the ``source`` table list every configured (name, kind, url).

        New names are inserted, a changed kind or url is updated, sources no longer
        configured are left alone (their history stays).
        """
        with self._tx("syncing sources") as conn:
            known = {
                row.name: (row.kind, row.url)
                for row in conn.execute(sa.select(SOURCE.c.name, SOURCE.c.kind, SOURCE.c.url))
            }
            for name, kind, url in sources:
                if name not in known:
                    conn.execute(
                        self._insert(SOURCE)
                        .values(
                            name=name,
                            kind=kind,
                            url=url,
                            consecutive_failures=0,
                            failure_reported=False,
                            created_at=tables.utcnow(),
                        )
                        .on_conflict_do_nothing(index_elements=["name"])
                    )
                elif known[name] != (kind, url):
                    conn.execute(
                        sa.update(SOURCE).where(SOURCE.c.name == name).values(kind=kind, url=url)
                    )
                known[name] = (kind, url)

    def unseen_guids(self, name: str, guids: Sequence[str]) -> set[str]:
        """The guids among ``guids`` not yet stored for source ``name``.

        Lets the pipeline score only new items; ``record_poll`` checks again itself.
        """
        with self._tx("looking up stored items") as conn:
            source_id = int(self._source_row(conn, name).id)
            stored = stored_guids(conn, source_id, [_safe(g) for g in guids])
        return {g for g in guids if _safe(g) not in stored}

    def source_states(self) -> dict[str, models.SourceState]:
        """Every source's state in two queries (sources, then their newest snapshots):
        what a poll cycle over many sources reads once instead of once per source.
        """
        with self._tx("reading source states") as conn:
            rows = conn.execute(sa.select(SOURCE)).all()
            newest = (
                sa.select(SNAPSHOT.c.source_id, sa.func.max(SNAPSHOT.c.id).label("id"))
                .group_by(SNAPSHOT.c.source_id)
                .subquery()
            )
            snapshots = {
                int(row.source_id): str(row.text)
                for row in conn.execute(
                    sa.select(SNAPSHOT.c.source_id, SNAPSHOT.c.text).join(
                        newest, SNAPSHOT.c.id == newest.c.id
                    )
                )
            }
        return {row.name: _state(row, snapshots.get(row.id)) for row in rows}

    def source_state(self, name: str) -> models.SourceState:
        """What the store remembers about ``name``; ``snapshot`` is the newest snapshot text.

        Raises ``StoreError`` for a source never synced.
        """
        with self._tx("reading source state") as conn:
            row = self._source_row(conn, name)
            snapshot = conn.execute(
                sa.select(SNAPSHOT.c.text)
                .where(SNAPSHOT.c.source_id == row.id)
                .order_by(SNAPSHOT.c.taken_at.desc(), SNAPSHOT.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        return _state(row, snapshot)

    def record_failure(
        self, name: str, reason: str, *, now: datetime, next_due_at: datetime | None
    ) -> int:
        """Record a failed poll of ``name``; returns the new consecutive failure count.

        Sets ``last_error`` (``reason`` must hold no secrets), ``last_polled_at``,
        ``next_due_at`` and ``failing_since`` if not already failing.
        """
        with self._tx("recording a failure") as conn:
            count = conn.execute(
                sa.update(SOURCE)
                .where(SOURCE.c.name == name)
                .values(
                    consecutive_failures=SOURCE.c.consecutive_failures + 1,
                    last_error=_clip(reason),
                    last_polled_at=now,
                    failing_since=sa.func.coalesce(SOURCE.c.failing_since, sa.bindparam("fs")),
                    next_due_at=next_due_at,
                )
                .returning(SOURCE.c.consecutive_failures),
                {"fs": now},
            ).scalar_one_or_none()
            if count is None:
                raise StoreError(f"store: unknown source {name!r} (sync_sources first)")
        return int(count)

    def mark_failure_reported(self, name: str) -> None:
        """Remember that the current failure streak of ``name`` has been reported."""
        with self._tx("marking a failure reported") as conn:
            conn.execute(
                sa.update(SOURCE).where(SOURCE.c.name == name).values(failure_reported=True)
            )

    # ------------------------------------------------------------------ polls

    @property
    def story_index_factory(self) -> Callable[[], StoryIndex]:
        """Makes an empty story index; the poll's own stories are matched with one too."""
        return self._index_factory

    def unseen_entries(self, name: str, entries: Sequence[models.Entry]) -> list[models.Entry]:
        """The entries of source ``name`` not stored yet, the first one of each guid."""
        by_guid: dict[str, models.Entry] = {}
        for entry in entries:
            by_guid.setdefault(_safe(entry.guid), entry)
        if not by_guid:
            return []
        with self._tx("looking up stored items") as conn:
            source_id = int(self._source_row(conn, name).id)
            stored = stored_guids(conn, source_id, list(by_guid))
        return [entry for guid, entry in by_guid.items() if guid not in stored]

    def known_stories(
        self, signatures: Sequence[bytes], *, now: datetime, window: timedelta
    ) -> dict[bytes, KnownStory]:
        """Signature → the stored story the story index finds for it, seen within ``window``.

        A story's signature matches by the index's rule (near-duplicate for the MinHash
        index the daemon uses); an empty signature never matches.
        """
        if not any(signatures):
            return {}
        with self._lock:
            try:
                with self._tx("looking up stories") as conn:
                    return known_stories(
                        conn, self._story_index(conn), signatures, now=now, window=window
                    )
            except BaseException:
                self._rebuild_index_after_rollback()
                raise

    def write_poll(
        self,
        name: str,
        state: models.FetchState,
        plan: PollPlan,
        *,
        now: datetime,
        next_due_at: datetime | None = None,
    ) -> models.PollOutcome:
        """Write one successful poll of source ``name`` in ONE transaction.

        ``plan`` (from :func:`watchtower.alerting.decide`) gives the new items, their
        stories, the alerts and one pending delivery per alert and channel (due ``now``).
        An item whose (source, guid) is stored already is skipped, with its alert; a story
        that has an alert gets no second one. The source gets ``state`` (etag,
        last_modified, page_hash: pass the current values again after a 304), a clean
        health record and ``next_due_at``; a snapshot whose hash differs from the newest
        is stored, keeping 10. Raises ``StoreError`` (nothing is written then).
        """
        with self._lock:
            try:
                with self._tx(f"storing a poll of {name!r}") as conn:
                    source_id = int(self._source_row(conn, name).id)
                    writer = PlanWriter(conn, self._insert, _safe, _safe_opt)
                    outcome, created = writer.write(source_id, plan, now)
                    self._update_source(conn, name, state, now, next_due_at)
            except BaseException:
                self._rebuild_index_after_rollback()
                raise
            if self._index is not None:
                for story_id, signature in created:
                    self._index.add(story_id, signature)
        if outcome.new_items:
            log.info(
                "source %s: %d new items, %d new alerts, %d joined stories",
                name,
                outcome.new_items,
                len(outcome.new_alerts),
                outcome.joined_stories,
            )
        return outcome

    def record_poll(
        self,
        name: str,
        state: models.FetchState,
        entries: Sequence[models.ScoredEntry],
        *,
        threshold: float,
        channels: Callable[[float], Sequence[str]],
        now: datetime,
        next_due_at: datetime | None = None,
        story_window: timedelta = timedelta(days=3),
    ) -> models.PollOutcome:
        """Store one successful poll of already scored entries, holding the writer lock.

        The poll's last stages in one call: drop the entries already stored, find their
        known stories within ``story_window``, plan with
        :func:`watchtower.alerting.decide` (``threshold``, ``channels``) and
        :meth:`write_poll` the plan. Raises ``StoreError``.
        """
        by_guid: dict[str, models.ScoredEntry] = {}
        for scored in entries:
            by_guid.setdefault(_safe(scored.entry.guid), scored)
        with self._lock:
            unseen = self.unseen_entries(name, [s.entry for s in by_guid.values()])
            fresh = [by_guid[_safe(entry.guid)] for entry in unseen]
            known = self.known_stories([s.signature for s in fresh], now=now, window=story_window)
            plan = alerting.decide(
                fresh,
                known,
                threshold=threshold,
                channels=channels,
                now=now,
                index_factory=self._index_factory,
            )
            return self.write_poll(name, state, plan, now=now, next_due_at=next_due_at)

    def _rebuild_index_after_rollback(self) -> None:
        self._index = None  # reloaded from the table by the next poll with new items

    def _update_source(
        self,
        conn: Connection,
        name: str,
        state: models.FetchState,
        now: datetime,
        next_due_at: datetime | None,
    ) -> None:
        source_id = conn.execute(
            sa.update(SOURCE)
            .where(SOURCE.c.name == name)
            .values(
                etag=_safe_opt(state.etag),
                last_modified=_safe_opt(state.last_modified),
                page_hash=_safe_opt(state.page_hash),
                last_polled_at=now,
                last_success_at=now,
                consecutive_failures=0,
                last_error=None,
                failing_since=None,
                failure_reported=False,
                next_due_at=next_due_at,
            )
            .returning(SOURCE.c.id)
        ).scalar_one()
        if state.snapshot is not None:
            self._store_snapshot(conn, int(source_id), _safe(state.snapshot), now)

    @staticmethod
    def _store_snapshot(conn: Connection, source_id: int, text: str, now: datetime) -> None:
        digest = _snapshot_hash(text)
        newest = conn.execute(
            sa.select(SNAPSHOT.c.hash)
            .where(SNAPSHOT.c.source_id == source_id)
            .order_by(SNAPSHOT.c.taken_at.desc(), SNAPSHOT.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if newest == digest:
            return
        conn.execute(
            sa.insert(SNAPSHOT).values(source_id=source_id, taken_at=now, text=text, hash=digest)
        )
        keep = (
            sa.select(SNAPSHOT.c.id)
            .where(SNAPSHOT.c.source_id == source_id)
            .order_by(SNAPSHOT.c.taken_at.desc(), SNAPSHOT.c.id.desc())
            .limit(SNAPSHOTS_KEPT)
        )
        conn.execute(
            sa.delete(SNAPSHOT).where(
                SNAPSHOT.c.source_id == source_id,
                SNAPSHOT.c.id.not_in(sa.select(keep.subquery().c.id)),
            )
        )

    # ------------------------------------------------------------------ reads

    def list_alerts(self, limit: int = 50, since: datetime | None = None) -> list[AlertView]:
        """Stored alerts, newest first; only those created at or after ``since`` if given."""
        query = self._alert_query().order_by(ALERT.c.created_at.desc(), ALERT.c.id.desc())
        if since is not None:
            query = query.where(ALERT.c.created_at >= since)
        with self._tx("listing alerts") as conn:
            rows = conn.execute(query.limit(limit)).all()
            return self._alert_views(conn, rows)

    def alert_view(self, alert_id: int) -> AlertView | None:
        """One alert by id, or ``None``."""
        with self._tx("reading an alert") as conn:
            rows = conn.execute(self._alert_query().where(ALERT.c.id == alert_id)).all()
            views = self._alert_views(conn, rows)
        return views[0] if views else None

    @staticmethod
    def _alert_query() -> sa.Select[Any]:
        return sa.select(
            ALERT.c.id,
            ALERT.c.story_id,
            ALERT.c.created_at,
            ALERT.c.score,
            ALERT.c.explanation,
            ITEM.c.title,
            ITEM.c.url,
            ITEM.c.published_at,
            ITEM.c.diff,
            SOURCE.c.name.label("source"),
        ).select_from(
            ALERT.join(ITEM, ITEM.c.id == ALERT.c.item_id).join(
                SOURCE, SOURCE.c.id == ITEM.c.source_id
            )
        )

    @staticmethod
    def _alert_views(conn: Connection, rows: Sequence[Any]) -> list[AlertView]:
        if not rows:
            return []
        links: dict[int, list[SourceLink]] = {}
        story_ids = {row.story_id for row in rows}
        for link in conn.execute(
            sa.select(
                ITEM.c.story_id,
                SOURCE.c.name,
                ITEM.c.title,
                ITEM.c.url,
                ITEM.c.published_at,
            )
            .select_from(ITEM.join(SOURCE, SOURCE.c.id == ITEM.c.source_id))
            .where(ITEM.c.story_id.in_(story_ids))
            .order_by(ITEM.c.fetched_at, ITEM.c.id)
        ):
            links.setdefault(link.story_id, []).append(
                SourceLink(link.name, link.title, link.url, link.published_at)
            )
        return [
            AlertView(
                id=row.id,
                story_id=row.story_id,
                created_at=row.created_at,
                score=float(row.score),
                title=row.title,
                url=row.url,
                source=row.source,
                published=row.published_at,
                sources=tuple(links.get(row.story_id, ())),
                explanation=models.Explanation.from_dict(row.explanation or {}),
                diff=tuple(row.diff or ()),
            )
            for row in rows
        ]

    def source_health(self, now: datetime) -> list[SourceHealth]:
        """Every known source with its health and item/alert counts of the last 24 h."""
        day_ago = now - timedelta(days=1)
        items = (
            sa.select(ITEM.c.source_id, sa.func.count().label("n"))
            .where(ITEM.c.fetched_at >= day_ago)
            .group_by(ITEM.c.source_id)
            .subquery()
        )
        alerts = (
            sa.select(ITEM.c.source_id, sa.func.count().label("n"))
            .select_from(ALERT.join(ITEM, ITEM.c.id == ALERT.c.item_id))
            .where(ALERT.c.created_at >= day_ago)
            .group_by(ITEM.c.source_id)
            .subquery()
        )
        query = (
            sa.select(
                SOURCE,
                sa.func.coalesce(items.c.n, 0).label("items_last_day"),
                sa.func.coalesce(alerts.c.n, 0).label("alerts_last_day"),
            )
            .select_from(
                SOURCE.outerjoin(items, items.c.source_id == SOURCE.c.id).outerjoin(
                    alerts, alerts.c.source_id == SOURCE.c.id
                )
            )
            .order_by(SOURCE.c.name)
        )
        with self._tx("reading source health") as conn:
            rows = conn.execute(query).all()
        return [
            SourceHealth(
                name=row.name,
                kind=row.kind,
                url=row.url,
                last_polled_at=row.last_polled_at,
                last_success_at=row.last_success_at,
                consecutive_failures=row.consecutive_failures,
                last_error=row.last_error,
                failing_since=row.failing_since,
                failure_reported=bool(row.failure_reported),
                next_due_at=row.next_due_at,
                items_last_day=int(row.items_last_day),
                alerts_last_day=int(row.alerts_last_day),
            )
            for row in rows
        ]

    def counts(self) -> dict[str, int]:
        """Row counts: ``items``, ``stories``, ``alerts``, ``sources`` and
        ``deliveries_<status>`` for every delivery status (0 when none)."""
        out: dict[str, int] = {}
        with self._tx("counting") as conn:
            for key, table in (
                ("sources", SOURCE),
                ("items", ITEM),
                ("stories", STORY),
                ("alerts", ALERT),
            ):
                out[key] = int(
                    conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                )
            for status in tables.DELIVERY_STATUSES:
                out[f"deliveries_{status}"] = 0
            for status, n in conn.execute(
                sa.select(DELIVERY.c.status, sa.func.count()).group_by(DELIVERY.c.status)
            ):
                out[f"deliveries_{status}"] = int(n)
        return out

    # ------------------------------------------------------------------ outbox

    @staticmethod
    def _due(now: datetime) -> sa.ColumnElement[bool]:
        return sa.or_(
            sa.and_(
                DELIVERY.c.status == "pending",
                sa.or_(DELIVERY.c.next_attempt_at.is_(None), DELIVERY.c.next_attempt_at <= now),
            ),
            sa.and_(
                DELIVERY.c.status == "sending",
                sa.or_(DELIVERY.c.lease_until.is_(None), DELIVERY.c.lease_until < now),
            ),
        )

    def claim_deliveries(
        self,
        now: datetime,
        *,
        limit: int = 50,
        lease: timedelta = timedelta(minutes=5),
        channel_prefix: str | None = None,
    ) -> list[DeliveryJob]:
        """Claim up to ``limit`` due deliveries, oldest due first, for ``lease``.

        Due: ``pending`` with ``next_attempt_at <= now``, or ``sending`` whose lease ran
        out. Claimed rows become ``sending`` with ``lease_until = now + lease``; finish
        each with :meth:`mark_sent`, :meth:`mark_retry` or :meth:`mark_dead`. Concurrent
        claimers (threads, processes) never receive the same row while its lease runs.
        ``channel_prefix`` (e.g. ``"webhook:"``) restricts the channels claimed.
        """
        if limit <= 0:
            return []
        condition = self._due(now)
        if channel_prefix:
            condition = sa.and_(
                condition, DELIVERY.c.channel.startswith(channel_prefix, autoescape=True)
            )
        pick = (
            sa.select(DELIVERY.c.id)
            .where(condition)
            .order_by(DELIVERY.c.next_attempt_at, DELIVERY.c.id)
            .limit(limit)
        )
        if self._dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        with self._tx("claiming deliveries") as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            rows = conn.execute(
                sa.update(DELIVERY)
                .where(DELIVERY.c.id.in_(ids), condition)
                .values(status="sending", lease_until=now + lease)
                .returning(*_JOB_COLUMNS)
            ).all()
        order = {delivery_id: n for n, delivery_id in enumerate(ids)}
        return sorted((_job(row) for row in rows), key=lambda job: order[job.id])

    def _finish(self, action: str, delivery_id: int, **values: Any) -> None:
        with self._tx(action) as conn:
            found = conn.execute(
                sa.update(DELIVERY)
                .where(DELIVERY.c.id == delivery_id)
                .values(**values)
                .returning(DELIVERY.c.id)
            ).first()
        if found is None:
            raise StoreError(f"store: no delivery {delivery_id}")

    def mark_sent(self, delivery_id: int, now: datetime) -> None:
        """The receiver accepted the delivery (2xx, SMTP 250): status ``sent``."""
        self._finish(
            "marking a delivery sent", delivery_id, status="sent", sent_at=now, lease_until=None
        )

    def mark_retry(self, delivery_id: int, error: str, next_attempt_at: datetime) -> None:
        """A failed attempt: attempts + 1, back to ``pending`` due at ``next_attempt_at``."""
        self._finish(
            "scheduling a retry",
            delivery_id,
            status="pending",
            attempts=DELIVERY.c.attempts + 1,
            last_error=_clip(error),
            next_attempt_at=next_attempt_at,
            lease_until=None,
        )

    def mark_dead(self, delivery_id: int, error: str) -> None:
        """A final failure: attempts + 1, status ``dead`` (see :meth:`requeue`)."""
        self._finish(
            "marking a delivery dead",
            delivery_id,
            status="dead",
            attempts=DELIVERY.c.attempts + 1,
            last_error=_clip(error),
            lease_until=None,
        )

    def requeue(self, delivery_id: int | None, *, now: datetime | None = None) -> int:
        """Put dead deliveries back to ``pending``, due ``now`` (default: the current time),
        with attempts reset to 0. ``None`` requeues every dead delivery. Returns the count.
        """
        when = now or tables.utcnow()
        stmt = (
            sa.update(DELIVERY)
            .where(DELIVERY.c.status == "dead")
            .values(status="pending", attempts=0, next_attempt_at=when, lease_until=None)
            .returning(DELIVERY.c.id)
        )
        if delivery_id is not None:
            stmt = stmt.where(DELIVERY.c.id == delivery_id)
        with self._tx("requeueing deliveries") as conn:
            return len(conn.execute(stmt).all())

    def dead_deliveries(self) -> list[tuple[DeliveryJob, str]]:
        """Every dead delivery with its last error, oldest first."""
        with self._tx("listing dead deliveries") as conn:
            rows = conn.execute(
                sa.select(*_JOB_COLUMNS, DELIVERY.c.last_error)
                .where(DELIVERY.c.status == "dead")
                .order_by(DELIVERY.c.id)
            ).all()
        return [(_job(row), row.last_error or "") for row in rows]

    def disable_channel(self, channel: str, reason: str, now: datetime) -> None:
        """Switch ``channel`` off (e.g. a webhook answered 410 Gone)."""
        stmt = self._insert(CHANNEL_STATE).values(
            channel=channel, disabled_at=now, reason=_clip(reason)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["channel"],
            set_={"disabled_at": now, "reason": _clip(reason)},
        )
        with self._tx("disabling a channel") as conn:
            conn.execute(stmt)

    def enable_channel(self, channel: str) -> bool:
        """Switch ``channel`` on again; returns whether it was disabled."""
        with self._tx("enabling a channel") as conn:
            gone = conn.execute(
                sa.delete(CHANNEL_STATE)
                .where(CHANNEL_STATE.c.channel == channel)
                .returning(CHANNEL_STATE.c.channel)
            ).first()
        return gone is not None

    def disabled_channels(self) -> dict[str, str]:
        """Disabled channels and why."""
        with self._tx("listing disabled channels") as conn:
            rows = conn.execute(
                sa.select(CHANNEL_STATE.c.channel, CHANNEL_STATE.c.reason).where(
                    CHANNEL_STATE.c.disabled_at.is_not(None)
                )
            ).all()
        return {row.channel: row.reason or "" for row in rows}
