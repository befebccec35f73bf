"""Store engine and migrations: open twice, schema in step, pragmas, clear errors."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from watchtower.errors import StoreError
from watchtower.models import Entry, FetchState, Score, ScoredEntry
from watchtower.store import Store, make_engine, mask_url, migrate
from watchtower.store.engine import alembic_config, migrations_path
from watchtower.store.search import is_search_structure

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TABLES = {
    "alembic_version",
    "alert",
    "channel_state",
    "delivery",
    "digest",
    "item",
    "snapshot",
    "source",
    "story",
}


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_open_twice_keeps_data_and_schema_at_head(store_url: str) -> None:
    with Store.open(store_url) as st:
        st.sync_sources([("HRW", "feed", "http://127.0.0.1:9/x")])
        entry = ScoredEntry(Entry(source="HRW", guid="1", title="t"), Score(0.9), b"s")
        st.record_poll("HRW", FetchState(), [entry], threshold=0.5, channels=lambda s: [], now=NOW)
    with Store.open(store_url) as st:
        assert st.counts()["items"] == 1
        with st.engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            assert list(version) == [_head()]
        assert TABLES <= names


def test_migrations_match_the_tables(store_url: str) -> None:
    with Store.open(store_url) as st, st.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                # the full-text index is raw DDL (FTS5 / tsvector), not a SQLModel table
                "include_name": lambda name, kind, _parent: (
                    kind != "table" or not is_search_structure(name)
                ),
            },
        )
        assert compare_metadata(context, SQLModel.metadata) == []


def test_concurrent_first_opens_both_succeed(store_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def opener() -> None:
        barrier.wait()
        try:
            Store.open(store_url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=40)
    assert errors == []


def test_postgresql_tables_live_in_the_search_path_schema(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    schema = store_url.rsplit("%3D", 1)[1]
    with Store.open(store_url) as st, st.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
            {"s": schema},
        ).scalars()
        assert TABLES <= set(rows)


def test_sqlite_pragmas_and_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "var" / "watchtower.db"
    with Store.open(f"sqlite:///{path}") as st, st.engine.connect() as conn:
        assert path.exists()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_sqlite_in_memory_works_across_threads() -> None:
    with Store.open("sqlite://") as st:
        st.sync_sources([("HRW", "feed", "http://127.0.0.1:9/x")])
        out: list[int] = []
        t = threading.Thread(target=lambda: out.append(st.counts()["sources"]))
        t.start()
        t.join(timeout=10)
        assert out == [1]


def test_sqlite_concurrent_writers_do_not_fail_with_locked(tmp_path: Path) -> None:
    """Two processes' worth of read-then-write transactions: BEGIN IMMEDIATE queues them."""
    url = f"sqlite:///{tmp_path}/busy.db"
    names = [f"S{n}" for n in range(2)]
    with Store.open(url) as st:
        st.sync_sources([(n, "feed", f"http://127.0.0.1:9/{n}") for n in names])
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with Store.open(url) as st:
                for n in range(25):
                    entry = ScoredEntry(Entry(source=name, guid=str(n), title="t"), Score(0.9), b"")
                    st.record_poll(
                        name,
                        FetchState(),
                        [entry],
                        threshold=0.5,
                        channels=lambda s: ["email"],
                        now=NOW + timedelta(seconds=n),
                    )
                    st.claim_deliveries(NOW + timedelta(seconds=n))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=50)
    assert errors == []
    with Store.open(url) as st:
        assert st.counts()["alerts"] == 50


def test_datetimes_come_back_utc_aware(store_url: str) -> None:
    with Store.open(store_url) as st:
        st.sync_sources([("HRW", "feed", "http://127.0.0.1:9/x")])
        st.record_failure("HRW", "boom", now=NOW, next_due_at=datetime(2025, 3, 1, 13, 0))
        (health,) = st.source_health(NOW)
        assert health.last_polled_at == NOW
        assert health.next_due_at == NOW + timedelta(hours=1)  # naive is taken as UTC
        for value in (health.last_polled_at, health.next_due_at, health.failing_since):
            assert value is not None and value.utcoffset() == timedelta(0)


def test_unreachable_postgresql_error_hides_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = "postgresql://watch:Sup3rS3cretPw@127.0.0.1:1/watchtower?connect_timeout=2"
    with pytest.raises(StoreError) as info:
        Store.open(url)
    message = str(info.value)
    assert message.startswith("store: ")
    assert "Sup3rS3cretPw" not in message
    assert "127.0.0.1" in message
    assert "Sup3rS3cretPw" not in caplog.text


def test_bad_urls_give_short_errors_without_secrets() -> None:
    with pytest.raises(StoreError, match="cannot parse") as info:
        Store.open("postgresql://u:Sup3rS3cretPw@host:notaport/db")
    assert "Sup3rS3cretPw" not in str(info.value)
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        Store.open("mysql://u:pw@127.0.0.1/db")
    with pytest.raises(StoreError):
        Store.open("not a url at all")


def test_unwritable_sqlite_folder_gives_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="store: "):
        Store.open(f"sqlite:///{blocker}/sub/watchtower.db")


def test_corrupt_sqlite_file_gives_store_error(tmp_path: Path) -> None:
    path = tmp_path / "watchtower.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="store: migrating"):
        Store.open(f"sqlite:///{path}")


def test_mask_url_and_plain_postgresql_rewrite() -> None:
    masked = mask_url("postgresql://u:Sup3rS3cretPw@db.example/wt")
    assert "Sup3rS3cretPw" not in masked and "***" in masked
    assert mask_url("::::") == "<unparseable database URL>"
    engine = make_engine("postgresql://u:pw@127.0.0.1:1/wt")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
    finally:
        engine.dispose()


def test_migrate_is_idempotent_and_packaged(tmp_path: Path) -> None:
    assert (migrations_path() / "env.py").is_file()
    assert (migrations_path() / "script.py.mako").read_text().count("import sqlmodel") == 1
    engine = make_engine(f"sqlite:///{tmp_path}/m.db")
    try:
        migrate(engine)
        migrate(engine)
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == _head()
    finally:
        engine.dispose()


def test_each_source_s_newest_item_is_one_index_lookup(tmp_path: Path) -> None:
    """The health check reads every source's newest item by ``ix_item_source_fetched``,
    not by scanning every stored item (the check runs each heartbeat)."""
    with Store.open(f"sqlite:///{tmp_path}/wt.db") as st:
        st.sync_sources([(name, "feed", f"http://127.0.0.1:9/{name}") for name in "AB"])
        for hours, (name, guid) in enumerate([("A", "1"), ("A", "2"), ("B", "3")]):
            entry = ScoredEntry(Entry(source=name, guid=guid, title="t"), Score(0.1), b"")
            now = NOW + timedelta(hours=hours)
            st.record_poll(
                name, FetchState(), [entry], threshold=0.5, channels=lambda s: [], now=now
            )
        inputs = {row.name: row.last_new_item_at for row in st.health_inputs()}
        assert inputs == {"A": NOW + timedelta(hours=1), "B": NOW + timedelta(hours=2)}
        statuses = st.health_statuses()
        assert statuses["A"].last_new_item_at == NOW + timedelta(hours=1)
        with st.engine.connect() as conn:
            plan = conn.execute(
                sa.text(
                    "EXPLAIN QUERY PLAN SELECT (SELECT max(fetched_at) FROM item"
                    " WHERE item.source_id = source.id) FROM source"
                )
            ).all()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "ix_item_source_fetched" in details, details
    assert "SCAN item" not in details, details
