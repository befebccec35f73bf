"""One running Watchtower per store: an advisory lock held for the process's life.

:func:`acquire` takes the store's instance lock without waiting and returns a
:class:`InstanceLock`; release it (or let the process end) to let another one in. When
another process holds it, :class:`watchtower.errors.StoreBusyError` is raised with a
message naming the holder (pid, host, since).

* SQLite: ``fcntl.flock`` on ``<database>.lock`` beside the database file; the holder
  writes one line ``pid host since`` into it. The kernel drops the lock when the process
  dies, so a SIGKILL never leaves a stale lock (the file itself stays, harmlessly).
* PostgreSQL: ``pg_try_advisory_lock`` on a dedicated connection kept open for the
  lock's life; the key is derived from the database and schema (``current_database()``,
  ``current_schema()``), so stores in other schemas of one server do not collide. The
  holder is named by the lock connection's ``application_name``, read back through
  ``pg_locks`` / ``pg_stat_activity``. The server drops the lock when the connection
  ends.
* In-memory SQLite has nothing to share and takes no lock.

The lock is per store, not per role: several cooperating instances (leased polls on
PostgreSQL) would take a shared form of it instead (``pg_try_advisory_lock_shared``),
with this exclusive form kept for what must run alone.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from watchtower.errors import StoreBusyError
from watchtower.store.engine import mask_url, parse_url, postgres_connect_args, store_error

log = logging.getLogger(__name__)

_APP_LIMIT = 63  # PostgreSQL truncates application_name to NAMEDATALEN - 1 bytes


def holder_text() -> str:
    """This process as the lock names it: ``pid=… host=… since=…`` (UTC, seconds)."""
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"pid={os.getpid()} host={socket.gethostname()} since={since}"


class InstanceLock:
    """A held instance lock; :meth:`release` is idempotent."""

    def __init__(
        self,
        description: str,
        *,
        file: IO[str] | None = None,
        conn: Connection | None = None,
        engine: sa.Engine | None = None,
        key: int | None = None,
    ) -> None:
        self.description = description
        self._file = file
        self._conn = conn
        self._engine = engine
        self._key = key

    def check(self) -> bool:
        """True while this process still holds the lock.

        A file lock cannot be lost. A PostgreSQL session lock ends with its connection
        (a server restart, a network cut): then the lock is taken again on a new
        connection, and False is returned if another process took it meanwhile. While
        the server cannot be reached the answer is True (no one else can take it there
        either, as far as this process can tell) and the next check tries again.
        """
        if self._engine is None or self._key is None:
            return True
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT 1"))
                return True
            except SQLAlchemyError:
                self._drop_connection()
        try:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError:
            return True
        try:
            held = bool(
                conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
            )
        except SQLAlchemyError:
            conn.close()
            return True
        if not held:
            conn.close()
            return False
        log.warning("instance lock: its connection was lost and the lock is held again")
        self._conn = conn
        return True

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None

    def release(self) -> None:
        """Give the lock up (closing the file or the dedicated connection)."""
        if self._file is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            finally:
                self._file.close()
                self._file = None
        self._drop_connection()  # the server ends the session, and the lock with it
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> InstanceLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(url: str) -> InstanceLock:
    """Take the instance lock of the store at ``url`` without waiting.

    Raises ``StoreBusyError`` naming the holder when another process has it, and
    ``StoreError`` when the lock cannot be taken at all.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_lock(parsed)
    return _postgres_lock(parsed)


def lock_path(url: URL) -> Path | None:
    """The SQLite lock file for ``url`` (``None`` for an in-memory database)."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    db = Path(database).expanduser()
    return db.with_name(db.name + ".lock")


def _sqlite_lock(url: URL) -> InstanceLock:
    path = lock_path(url)
    if path is None:
        return InstanceLock("in-memory store")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise store_error(f"locking {path}", exc) from exc
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise StoreBusyError(
            f"store {path.with_suffix('')} is in use by another Watchtower ({holder})",
            holder=holder,
        ) from None
    mine = holder_text()
    fh.seek(0)
    fh.truncate()
    fh.write(mine + "\n")
    fh.flush()
    log.debug("instance lock %s taken (%s)", path, mine)
    return InstanceLock(mine, file=fh)


def lock_key(database: str, schema: str) -> int:
    """The signed 64-bit advisory lock key for one database and schema."""
    digest = hashlib.sha256(f"watchtower:instance:{database}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _postgres_lock(url: URL) -> InstanceLock:
    mine = holder_text()
    name = ("watchtower " + mine)[:_APP_LIMIT]
    engine = sa.create_engine(
        url,
        poolclass=NullPool,
        connect_args={**postgres_connect_args(url), "application_name": name},
    )
    secret = str(url.password) if url.password else None
    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        database, schema = conn.execute(
            sa.text("SELECT current_database(), current_schema()")
        ).one()
        key = lock_key(str(database), str(schema))
        if conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            log.debug("instance lock %s on %s taken (%s)", key, mask_url(url), mine)
            return InstanceLock(mine, conn=conn, engine=engine, key=key)
        holder = _pg_holder(conn, key)
        conn.close()
    except SQLAlchemyError as exc:
        engine.dispose()
        raise store_error(f"locking {mask_url(url)}", exc, secret=secret) from exc
    engine.dispose()
    raise StoreBusyError(
        f"store {mask_url(url)} (schema {schema}) is in use by another Watchtower ({holder})",
        holder=holder,
    )


def _pg_holder(conn: Connection, key: int) -> str:
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row: Any = conn.execute(
        sa.text(
            "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND l.classid = :hi AND l.objid = :lo AND l.objsubid = 1"
        ),
        {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
    ).first()
    if row is None:
        return "another process"
    app = str(row[0] or "")
    if app.startswith("watchtower "):
        return app[len("watchtower ") :]
    return f"client {row[1] or 'local'}, connected since {row[2]:%Y-%m-%dT%H:%M:%SZ}"
