"""What a failed poll records: nothing when shutdown cut it off; a failure (not an empty
page) when a page's selector stops matching."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.pipeline.test_pipeline_health import make_config
from tests.support import LoopbackHTTP, Response, shipped_baseline_yaml
from watchtower import health
from watchtower.config import load_config
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


def test_a_page_whose_selector_stops_matching_is_a_failure(
    http_server: LoopbackHTTP, tmp_path: Path, store_url: str
) -> None:
    path = tmp_path / "watchtower.yaml"
    path.write_text(
        f"store: '{store_url}'\n{shipped_baseline_yaml(tmp_path)}\n"
        "fetch: {allow_private_addresses: true, timeout: 5s}\n"
        "service: {report_failing_after: 1s}\n"
        f"sources:\n  - {{name: Page, page: '{http_server.url('/p.html')}', select: main}}\n"
    )
    config = load_config(path)
    source = config.feed_and_page_sources()[0]
    html = "<html><body><main><p>{}</p></main></body></html>"
    http_server.routes["/p.html"] = Response(
        200, {"Content-Type": "text/html"}, html.format("Statement on the DPRK.").encode()
    )

    async def scenario() -> None:
        async with Runtime(config) as runtime:
            assert (await runtime.pipeline.poll(source, force=True)).status == "ok"
            http_server.routes["/p.html"] = Response(
                200,
                {"Content-Type": "text/html"},
                b"<html><body><div>redesigned</div></body></html>",
            )
            report = await runtime.pipeline.poll(source, force=True)
            assert report.status == "error", "not an empty page"
            assert report.error == "selector `main` matches nothing on the page"
            later = datetime.now(UTC) + timedelta(seconds=5)
            changes = await health.check_health(runtime.store, config, later)
            assert [(c.type, c.reason) for c in changes] == [
                ("source.failing", "selector `main` matches nothing on the page")
            ]

    asyncio.run(scenario())
