"""Engine factory and migration runner for the Watchtower store.

:func:`make_engine` turns a configured URL into a SQLAlchemy engine:

* SQLite: WAL journal, ``busy_timeout`` 5000 ms, foreign keys on, and every transaction
  opened with ``BEGIN IMMEDIATE`` (SQLAlchemy's documented recipe: the driver's own
  transaction handling is switched off on connect and the ``begin`` event emits the
  BEGIN), so a read-then-write transaction waits for the lock instead of failing with
  "database is locked". The parent folder of the database file is created if missing.
* PostgreSQL through psycopg 3: ``postgresql://`` and ``postgres://`` are rewritten to
  ``postgresql+psycopg://``; connecting is bounded (``connect_timeout``) and idle
  connections are kept alive with TCP keepalives; query options such as
  ``options=-csearch_path=<schema>`` are passed through, and every table (including
  ``alembic_version``) lives in the first schema of that search path.

:func:`migrate` applies the Alembic revisions in ``migrations/versions`` up to head in one
transaction; it is safe to call on an up-to-date database and from several processes at
once (SQLite: the IMMEDIATE lock; PostgreSQL: an advisory transaction lock).

Every failure is raised as :class:`watchtower.errors.StoreError` whose message never
contains a password (see :func:`mask_url`).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from watchtower import masking
from watchtower.errors import StoreError

log = logging.getLogger(__name__)

SUPPORTED_DIALECTS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_MS = 5000
#: Key of the PostgreSQL advisory lock held while migrating ("wtch").
_MIGRATION_LOCK_KEY = 0x77746368
_MESSAGE_LIMIT = 300


def migrations_path() -> Path:
    """The folder holding ``env.py`` and ``versions/`` (package data)."""
    return Path(str(resources.files("watchtower.store").joinpath("migrations")))


def parse_url(url: str) -> URL:
    """Parse ``url`` and normalise PostgreSQL to psycopg 3. Raises ``StoreError``."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        # SQLAlchemy's message repeats the URL, password included: keep it out.
        raise StoreError(
            "store: cannot parse the database URL (expected e.g. "
            "sqlite:///var/watchtower.db or postgresql://user@host/db)"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise StoreError(
            f"store: unsupported database {parsed.get_backend_name()!r} "
            "(use sqlite:///… or postgresql://…)"
        )
    return parsed


def mask_url(url: str | URL) -> str:
    """``url`` as text with any password replaced by ``***``; safe for logs and errors."""
    if isinstance(url, URL):
        return masking.mask_url(url.render_as_string(hide_password=False))
    try:
        make_url(url)
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"
    return masking.mask_url(url)


def _password(url: URL) -> str | None:
    pw = url.password
    return str(pw) if pw else None


def store_error(action: str, exc: BaseException, *, secret: str | None = None) -> StoreError:
    """A short :class:`StoreError` for ``exc``: the driver's first line, no SQL, no secret."""
    orig = getattr(exc, "orig", None)
    detail = str(orig if orig is not None else exc).strip().splitlines()
    text = detail[0] if detail else type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    if len(text) > _MESSAGE_LIMIT:
        text = text[: _MESSAGE_LIMIT - 1] + "…"
    return StoreError(f"store: {action} failed: {text}")


def _sqlite_wal(cursor: Any) -> None:
    """Switch to WAL once per database file.

    The switch needs an exclusive lock and SQLite answers "database is locked" at once,
    without the busy handler, while another connection opens the same new file: retry
    within the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the sqlite3 module (SQLAlchemy recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _sqlite_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if in_memory:
        kwargs["poolclass"] = StaticPool
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


#: Seconds a PostgreSQL connection attempt may take (a server that accepts the TCP
#: connection but never answers would otherwise hold a store call forever).
POSTGRES_CONNECT_TIMEOUT = 10


def postgres_connect_args(url: URL) -> dict[str, Any]:
    """psycopg connection options: a bounded connect and TCP keepalives, unless the URL
    sets them itself."""
    defaults: dict[str, Any] = {
        "connect_timeout": POSTGRES_CONNECT_TIMEOUT,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    return {k: v for k, v in defaults.items() if k not in url.query}


def make_engine(url: str) -> Engine:
    """Create the engine for ``url`` (SQLite or PostgreSQL), configured as described above.

    No connection is opened yet. Raises ``StoreError`` for an unparseable or unsupported
    URL, or when the SQLite folder cannot be created.
    """
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        return sa.create_engine(
            parsed, pool_pre_ping=True, connect_args=postgres_connect_args(parsed)
        )
    except (SQLAlchemyError, OSError) as exc:
        raise store_error(f"opening {mask_url(parsed)}", exc, secret=_password(parsed)) from exc


def alembic_config(engine: Engine | None = None) -> Any:
    """An Alembic ``Config`` for our migrations, without any ini file."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_path()))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


_REVISION = re.compile(r"^(down_)?revision\b[^=]*=\s*(?:\"([^\"]*)\"|None)", re.MULTILINE)


def head_revision() -> str | None:
    """The newest revision among our migration files (the one no other file follows)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (migrations_path() / "versions").glob("*.py"):
        for down, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            if value:
                (parents if down else revisions).add(value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            return list(current) == [head]
    except SQLAlchemyError:
        return False  # a new database: no version table yet


@contextmanager
def _sqlite_foreign_keys_off(conn: sa.Connection) -> Iterator[None]:
    """SQLite's way to rebuild a table that others reference (its ALTER TABLE recipe):
    foreign keys off outside the transaction, checked before commit, on again after.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys = ON")


def _check_foreign_keys(conn: sa.Connection) -> None:
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
        if broken is not None:
            raise StoreError(f"store: migration left a broken reference in {broken[0]}")


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` in one transaction.

    Safe on an up-to-date database and from several processes at once.
    Raises ``StoreError`` on any failure.
    """
    secret = _password(engine.url)
    if revision == "head" and _at_head(engine):
        return  # the common start: no need to load Alembic (a fifth of start-up)
    from alembic import command
    from alembic.util.exc import CommandError

    cfg = alembic_config(engine)
    try:
        with engine.connect() as conn, _sqlite_foreign_keys_off(conn), conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY}
                )
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            _check_foreign_keys(conn)
    except (SQLAlchemyError, CommandError, OSError) as exc:
        raise store_error(f"migrating {mask_url(engine.url)}", exc, secret=secret) from exc
    finally:
        cfg.attributes.pop("connection", None)
    log.debug("store schema at %s on %s", revision, mask_url(engine.url))
