from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import LoopbackHTTP


@pytest.fixture
def http_server() -> Iterator[LoopbackHTTP]:
    """A real HTTP server on 127.0.0.1 for feeds, pages and webhook receivers."""
    with LoopbackHTTP() as server:
        yield server


def _store_urls() -> list[str]:
    urls = ["sqlite"]
    if os.environ.get("WATCHTOWER_TEST_POSTGRES_URL"):
        urls.append("postgresql")
    return urls


@pytest.fixture(params=_store_urls())
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file, and PostgreSQL when configured.

    PostgreSQL gets a schema of its own per test (dropped afterwards) so tests can run
    side by side on one server.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/watchtower.db"
        return
    import uuid

    import sqlalchemy as sa

    base = os.environ["WATCHTOWER_TEST_POSTGRES_URL"]
    if base.startswith("postgresql://"):
        base = "postgresql+psycopg://" + base[len("postgresql://") :]
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
