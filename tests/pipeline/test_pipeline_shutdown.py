"""A poll cut off by shutdown is not recorded, and not counted as a finished poll."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from tests.pipeline.test_pipeline_health import make_config
from tests.support import LoopbackHTTP, Response
from watchtower.runtime import Runtime
from watchtower.status import render_status


def test_a_poll_failing_during_shutdown_leaves_the_source_as_it_was(
    http_server: LoopbackHTTP, tmp_path: Path, store_url: str
) -> None:
    config = make_config(tmp_path, http_server, store_url)
    source = config.feed_and_page_sources()[0]
    http_server.routes["/flaky.xml"] = Response(503, {}, b"shutting down too")

    async def scenario() -> None:
        async with Runtime(config) as runtime:
            runtime.pipeline.stopping = True
            report = await runtime.pipeline.poll(source)
            assert report.status == "cancelled"
            state = runtime.store.source_state("Flaky")
            assert state.consecutive_failures == 0 and state.last_error is None
            table = render_status(runtime.store, config, datetime.now(UTC))
            assert "Flaky" in table and " new " in table

    asyncio.run(scenario())
