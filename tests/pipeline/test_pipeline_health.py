"""A failing source records why, backs off, recovers by itself, and is reported once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.e2e.test_e2e_run_once import RELEVANT, rss
from tests.support import LoopbackHTTP, Response, shipped_baseline_yaml
from watchtower.backoff import backoff
from watchtower.config import Config, load_config
from watchtower.runtime import Runtime
from watchtower.scheduler import Scheduler
from watchtower.status import render_status


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def make_config(tmp_path: Path, server: LoopbackHTTP, store_url: str) -> Config:
    path = tmp_path / "watchtower.yaml"
    path.write_text(
        f"store: '{store_url}'\n"
        f"{shipped_baseline_yaml(tmp_path)}\n"
        "fetch: {allow_private_addresses: true, timeout: 5s}\n"
        "service: {backoff_max: 2h, report_failing_after: 1h}\n"
        "sources:\n"
        f"  - {{name: Flaky, feed: '{server.url('/flaky.xml')}', every: 10m}}\n"
    )
    return load_config(path)


def test_backoff_doubles_caps_and_honours_retry_after() -> None:
    every, cap = timedelta(minutes=10), timedelta(hours=2)
    fixed = lambda: 0.5  # noqa: E731  (no jitter)
    assert backoff(every, 1, cap, rng=fixed) == every
    assert backoff(every, 3, cap, rng=fixed) == every * 4
    assert backoff(every, 10, cap, rng=fixed) == cap
    assert backoff(every, 1, cap, retry_after=3600, rng=fixed) == timedelta(hours=1)
    assert backoff(every, 1, cap, rng=lambda: 0.0) == every * 0.8


def test_failing_source_backs_off_recovers_and_is_reported_once(
    http_server: LoopbackHTTP, tmp_path: Path, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, http_server, store_url)
    source = config.feed_and_page_sources()[0]
    http_server.routes["/flaky.xml"] = Response(503, {"Retry-After": "1800"}, b"busy")
    clock = Clock()

    async def scenario() -> None:
        async with Runtime(config) as runtime:
            runtime.pipeline.clock = clock
            failed = await runtime.pipeline.poll(source)
            assert failed.status == "error" and failed.error and "503" in failed.error
            state = runtime.store.source_state("Flaky")
            assert state.consecutive_failures == 1
            assert state.next_due_at is not None
            assert state.next_due_at - clock.now >= timedelta(seconds=1800)

            clock.now += timedelta(minutes=10)
            skipped = await runtime.pipeline.poll(source)
            assert skipped.status == "skipped", "backing off: no request before next_due_at"
            assert len(http_server.requests_to("/flaky.xml")) == 1

            http_server.routes["/flaky.xml"] = Response(
                200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT, "f")
            )
            clock.now += timedelta(hours=1)
            recovered = await runtime.pipeline.poll(source)
            assert recovered.status == "ok" and recovered.new_items == len(RELEVANT)
            assert runtime.store.source_state("Flaky").consecutive_failures == 0

            http_server.routes["/flaky.xml"] = Response(404, {}, b"")
            long_ago = datetime.now(UTC) - timedelta(hours=3)
            runtime.pipeline.clock = lambda: long_ago
            await runtime.pipeline.poll(source, force=True)
            daemon = SimpleNamespace(runtime=runtime, config=config)
            scheduler = Scheduler(daemon)  # type: ignore[arg-type]
            with caplog.at_level(logging.ERROR, logger="watchtower.scheduler"):
                await scheduler.check_health()
                await scheduler.check_health()
            reports = [r for r in caplog.records if "has been failing since" in r.getMessage()]
            assert len(reports) == 1 and "Flaky" in reports[0].getMessage()

            table = render_status(runtime.store, config, datetime.now(UTC))
            assert "Flaky" in table and "failing" in table and "HTTP 404" in table
            assert "outbox:" in table
            assert "Flaky: failing since" in table and "health events:" in table
            assert "service: not running" in table

    asyncio.run(scenario())
