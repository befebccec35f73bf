"""The store's plumbing: the tables, text cleaning, and the one lock every call takes.

:class:`StoreBase` owns the engine, the single-writer lock (re-entrant; every
transaction takes it), the async queue of :meth:`StoreBase.run` and the dialect's
idempotent INSERT. The entity mixins (``sources``, ``polls``, ``alerts``,
``deliveries``, ``feedback``) build on it; :class:`watchtower.store.repo.Store` is
their one facade.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel

from watchtower.alerting import StoryIndex
from watchtower.errors import StoreError
from watchtower.store import health_tables, tables
from watchtower.store.engine import store_error
from watchtower.store.outage import Availability
from watchtower.store.search import ItemText, index_items

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
SOURCE_HEALTH = _T[health_tables.SourceHealthState.__tablename__]
SOURCE_EVENT = _T[health_tables.SourceEvent.__tablename__]
EVENT_DELIVERY = _T[health_tables.EventDelivery.__tablename__]
SERVICE_BEAT = _T[health_tables.ServiceBeat.__tablename__]

_ERROR_LIMIT = 1000


class ExactStoryIndex:
    """Default :class:`StoryIndex`: signatures equal byte for byte; the newest story wins."""

    def __init__(self) -> None:
        self._stories: dict[bytes, int] = {}

    def find(self, signature: bytes) -> int | None:
        return self._stories.get(signature)

    def find_many(self, signatures: Sequence[bytes]) -> list[int | None]:
        return [self.find(signature) for signature in signatures]

    def add(self, story_id: int, signature: bytes) -> None:
        self._stories[signature] = story_id


def safe(text: str) -> str:
    """Text both databases accept: no NUL (PostgreSQL refuses it), no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def key_hash(text: str) -> str:
    """The fixed-length key a long text is made unique by: SHA-256 of its UTF-8, hex.

    Indexes use it instead of the text itself, which may exceed a B-tree row (about
    2.7 kB on PostgreSQL); the text is stored whole beside it. Pass :func:`safe` text.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def safe_opt(text: str | None) -> str | None:
    return None if text is None else safe(text)


def clip(text: str) -> str:
    text = safe(text)
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 1] + "…"


@dataclass(frozen=True, slots=True)
class Written(Generic[_R]):
    """What one write of :meth:`StoreBase.write_together` gave: its result, or its error."""

    ok: bool
    value: _R | None = None
    error: Exception | None = None


def dialect_insert(dialect: str, table: sa.Table) -> Any:
    """``INSERT`` into ``table`` with the dialect's ``ON CONFLICT`` clauses."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # loaded with its engine only

        return postgresql.insert(table)
    return sqlite.insert(table)


class StoreBase:
    """Engine, lock and transactions shared by every part of the store."""

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
        self._source_ids: dict[str, int] = {}  # source rows are never deleted nor renumbered
        self._held: Connection | None = None  # the transaction of writer(), if open
        self._unindexed: list[ItemText] = []  # see index_at_commit
        self.availability = Availability()  # outages: one WARNING each, counted
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @contextmanager
    def _tx(self, action: str) -> Iterator[Connection]:
        """One transaction (BEGIN IMMEDIATE on SQLite) under the writer lock.

        SQLAlchemy errors are raised as ``StoreError``.
        """
        with self._lock:
            held = self._held
            if held is not None:  # inside writer(): its transaction, committed there
                try:
                    yield held
                except SQLAlchemyError as exc:
                    raise self._failed(action, exc) from exc
                return
            try:
                with self._begin() as conn:
                    yield conn
            except SQLAlchemyError as exc:
                raise self._failed(action, exc) from exc
        self.availability.ok()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """``engine.begin()``: one transaction, whose items queued by
        :meth:`index_at_commit` are indexed at its end, just before it commits."""
        with self.engine.begin() as conn:
            try:
                yield conn
                if self._unindexed:
                    index_items(conn, self._unindexed)
            finally:
                self._unindexed = []

    def index_at_commit(self, rows: Sequence[ItemText]) -> None:
        """Queue ``(item_id, title, summary, content)`` rows for the full-text index, in
        the open transaction: all of a transaction's rows are indexed by one statement
        at its end. SQLite's full-text index writes its pending terms to disk at every
        statement that may need undoing, so rows indexed poll by poll in a batch cost it
        one flush each; queued, the whole batch costs it one."""
        self._unindexed.extend(rows)

    def _failed(self, action: str, exc: SQLAlchemyError) -> StoreError:
        error = store_error(action, exc, secret=self._secret)
        self.availability.failed(str(error), exc)
        return error

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A SQLModel ``Session`` in one transaction under the writer lock, for inspection
        (tests, one-off maintenance): the program itself calls the named methods.

        Commits on success, else rolls back. SQLAlchemy errors are raised as ``StoreError``.
        """
        try:
            with (
                self._lock,
                Session(self.engine, expire_on_commit=False) as session,
                session.begin(),
            ):
                yield session
        except SQLAlchemyError as exc:
            raise store_error("session", exc, secret=self._secret) from exc

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the single-writer lock across several calls (read, decide, write), in
        ONE transaction: the calls inside share it, and it commits when the block ends
        (or rolls back, if it raises). Raises ``StoreError``; the story index is
        reloaded after a failed commit."""
        with self._lock:
            if self._held is not None:
                yield
                return
            try:
                with self._begin() as conn:
                    self._held = conn
                    try:
                        yield
                    finally:
                        self._held = None
            except SQLAlchemyError as exc:
                self._index = None
                raise self._failed("storing a poll", exc) from exc
            except BaseException:
                self._index = None
                raise
        self.availability.ok()

    def write_together(self, writes: Sequence[Callable[[], _R]]) -> list[Written[_R]]:
        """Run ``writes`` (functions making store calls) in order, in ONE transaction,
        committed once; each one's result or exception.

        A write that raises rolls the whole transaction back (and the story index is
        reloaded); then every write of the batch runs again, each in a transaction of its
        own, so the failing one fails alone and the others commit, each seeing those
        before it. Writes are store calls, so running one again after a rollback does
        what it would have done the first time. When the transaction itself fails (it
        cannot begin, or its commit fails), that ``StoreError`` is raised for all of them
        and none runs again.

        No savepoint per write: SQLite's full-text index writes its pending terms at each
        savepoint, which cost a batch of polls nearly twice the index work of one flush.
        """
        if len(writes) < 2:
            return [self._write_alone(write) for write in writes]
        values: list[_R] = []
        write_failed = False
        try:
            with self.writer():
                for write in writes:
                    try:
                        values.append(write())
                    except Exception:
                        write_failed = True
                        raise
        except Exception:
            if not write_failed:
                raise  # the transaction's own failure: every write of the batch gets it
            log.debug("a write of a batch of %d failed; each runs alone", len(writes))
            return [self._write_alone(write) for write in writes]
        return [Written(True, value) for value in values]

    def _write_alone(self, write: Callable[[], _R]) -> Written[_R]:
        try:
            with self.writer():
                return Written(True, write())
        except Exception as exc:
            return Written(False, error=exc)

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
        return dialect_insert(self._dialect, table)

    def _source_id(self, conn: Connection, name: str) -> int:
        """The id of source ``name``, read once: a source row is never deleted, and its
        id never changes. Raises ``StoreError`` for a source not synced."""
        source_id = self._source_ids.get(name)
        if source_id is None:
            found = conn.execute(sa.select(SOURCE.c.id).where(SOURCE.c.name == name)).scalar()
            if found is None:
                raise StoreError(f"store: unknown source {name!r} (sync_sources first)")
            source_id = self._source_ids[name] = int(found)
        return source_id

    @staticmethod
    def _source_row(conn: Connection, name: str) -> Any:
        row = conn.execute(sa.select(SOURCE).where(SOURCE.c.name == name)).first()
        if row is None:
            raise StoreError(f"store: unknown source {name!r} (sync_sources first)")
        return row
