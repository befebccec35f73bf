"""A poll the store fails is recorded on the source and shown in ``status``; the feed
goes on once the store accepts its items again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e.test_e2e_run_once import RELEVANT, rss
from tests.pipeline.test_pipeline_health import make_config
from tests.support import LoopbackHTTP, Response
from watchtower.runtime import Runtime
from watchtower.status import render_status

_POISON = RELEVANT[0][0]


def _refuse_poison(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text(f"ALTER TABLE item ADD CONSTRAINT no_poison CHECK (title <> '{_POISON}')")
        )
    else:
        conn.execute(
            sa.text(
                "CREATE TRIGGER no_poison BEFORE INSERT ON item "
                f"WHEN NEW.title = '{_POISON}' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
            )
        )


def _allow_poison(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("ALTER TABLE item DROP CONSTRAINT no_poison"))
    else:
        conn.execute(sa.text("DROP TRIGGER no_poison"))


def test_store_refusing_a_poll_is_recorded_on_the_source_and_shown_in_status(
    http_server: LoopbackHTTP, tmp_path: Path, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, http_server, store_url)
    source = config.feed_and_page_sources()[0]
    http_server.routes["/flaky.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT, "p")
    )

    async def scenario() -> None:
        async with Runtime(config) as runtime:
            with runtime.store.engine.begin() as conn:
                _refuse_poison(conn)
            failed = await runtime.pipeline.poll(source, force=True)
            assert failed.status == "error" and failed.store_error
            state = runtime.store.source_state("Flaky")
            assert state.consecutive_failures == 1
            assert state.last_error is not None and state.last_error.startswith("store:")
            table = render_status(runtime.store, config, datetime.now(UTC))
            assert "failing" in table and "store: " in table
            assert "store errors: 1 source(s) last failed on the store" in table

            with runtime.store.engine.begin() as conn:
                _allow_poison(conn)
            recovered = await runtime.pipeline.poll(source, force=True)
            assert recovered.status == "ok" and recovered.new_items == len(RELEVANT)
            assert runtime.store.source_state("Flaky").consecutive_failures == 0

    asyncio.run(scenario())
    assert "Traceback" not in caplog.text
    assert sum("not the source's fault" in r.getMessage() for r in caplog.records) == 1
