"""A 304 costs one request and a share of one batched store write.

The pipeline hands the source state of each 304 to :mod:`watchtower.pollbatch`, which
writes many in one transaction: after a flush (end of ``run --once``, health check,
shutdown), on a timer, or before any other write of the same source so the store sees
a source's polls in order. A crash before the flush loses only those states.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_e2e_run_once import RELEVANT, rss
from tests.support import LoopbackHTTP, feed_with_etag, shipped_baseline_yaml
from watchtower.config import Config, load_config
from watchtower.errors import HTTPStatusError, StoreError
from watchtower.models import FetchResult, NotModified, Score
from watchtower.pipeline import Pipeline
from watchtower.pollbatch import NotModifiedBatch
from watchtower.runtime import Runtime
from watchtower.store import Store

NOW = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
N_SOURCES = 25


class Fetcher304:
    """Answers 304 with a new ETag per URL, or raises the queued error once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None]] = []
        self.fail: dict[str, Exception] = {}

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        self.sent.append((url, etag))
        error = self.fail.pop(url, None)
        if error is not None:
            raise error
        host = url.split("//")[1].split(".")[0]
        return FetchResult(url, 304, b"", {}, etag=f'"{host}-{len(self.sent)}"')


class NoScorer:
    def score(self, title: str, text: str) -> Score:
        raise AssertionError("a 304 is never scored")


def _config(tmp_path: Path, store_url: str, n: int = N_SOURCES) -> Config:
    lines = [f"store: '{store_url}'", "sources:"]
    lines += [f"  - {{name: S{i:02d}, feed: 'https://n{i:02d}.example.org/rss'}}" for i in range(n)]
    path = tmp_path / "wt.yaml"
    path.write_text("\n".join(lines) + "\n")
    return load_config(path)


class Calls:
    """Records which store writes the pipeline makes, in order."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log: list[tuple[str, Any]] = []
        for name in ("record_not_modified", "write_poll", "record_failure"):
            method = getattr(store, name)

            def spy(*args: Any, _m: Any = method, _n: str = name, **kw: Any) -> Any:
                self.log.append((_n, args[0]))
                return _m(*args, **kw)

            monkeypatch.setattr(store, name, spy)

    def names(self) -> list[str]:
        return [name for name, _ in self.log]


def _pipeline(config: Config, store: Store, fetcher: Fetcher304) -> Pipeline:
    store.sync_sources([(s.label, s.kind, s.url) for s in config.sources])
    return Pipeline(config, store, NoScorer(), fetcher, lambda score: [], clock=lambda: NOW)


def test_304s_of_many_sources_are_written_in_one_batch(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, store_url)
    with Store.open(config.store) as store:
        calls = Calls(store, monkeypatch)
        pipeline = _pipeline(config, store, Fetcher304())

        async def cycle() -> None:
            reports = await asyncio.gather(*(pipeline.poll(s) for s in config.sources))
            assert {r.status for r in reports} == {"not-modified"}
            assert calls.log == [], "no store write per 304"
            assert store.source_state("S00").etag is None, "waiting for the batch"
            await pipeline.flush_unchanged()

        asyncio.run(cycle())
        assert calls.names() == ["record_not_modified"]
        assert len(calls.log[0][1]) == N_SOURCES
        for source in config.sources:
            state = store.source_state(source.label)
            host = source.url.split("//")[1].split(".")[0]
            assert state.etag is not None and state.etag.startswith(f'"{host}-')
            assert state.last_success_at == NOW
            assert state.next_due_at == NOW + source.every
        assert {h.last_polled_at for h in store.source_health(NOW)} == {NOW}


def test_a_failure_after_a_304_is_written_after_it(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, store_url, n=3)
    source = config.sources[0]
    with Store.open(config.store) as store:
        calls = Calls(store, monkeypatch)
        fetcher = Fetcher304()
        pipeline = _pipeline(config, store, fetcher)

        async def cycle() -> None:
            assert (await pipeline.poll(source)).status == "not-modified"
            fetcher.fail[source.url] = HTTPStatusError("HTTP 503 Unavailable", status=503)
            assert (await pipeline.poll(source, force=True)).status == "error"
            await pipeline.flush_unchanged()

        asyncio.run(cycle())
        assert calls.names() == ["record_not_modified", "record_failure"]
        state = store.source_state(source.label)
        assert state.consecutive_failures == 1 and state.last_error == "HTTP 503 Unavailable"
        assert state.etag == '"n00-1"', "the 304's validator, sent with the failed poll"
        assert fetcher.sent[1] == (source.url, '"n00-1"')
        health = {h.name: h for h in store.source_health(NOW)}[source.label]
        assert health.failing_since == NOW


def test_a_304_after_failures_clears_the_source_health(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, store_url, n=2)
    source = config.sources[1]
    with Store.open(config.store) as store:
        fetcher = Fetcher304()
        pipeline = _pipeline(config, store, fetcher)
        fetcher.fail[source.url] = HTTPStatusError("HTTP 500 Internal Server Error", status=500)

        async def cycle() -> None:
            assert (await pipeline.poll(source)).status == "error"
            store.mark_failure_reported(source.label)
            assert (await pipeline.poll(source, force=True)).status == "not-modified"

        asyncio.run(cycle())
        asyncio.run(pipeline.flush_unchanged())
        health = {h.name: h for h in store.source_health(NOW)}[source.label]
        assert health.consecutive_failures == 0 and health.last_error is None
        assert health.failing_since is None and not health.failure_reported
        assert health.last_success_at == NOW


def test_the_batch_writes_itself_after_its_delay(tmp_path: Path, store_url: str) -> None:
    config = _config(tmp_path, store_url, n=2)
    with Store.open(config.store) as store:
        store.sync_sources([(s.label, s.kind, s.url) for s in config.sources])
        batch = NotModifiedBatch(store, delay=0.05)

        async def wait_for_tick() -> None:
            batch.add(NotModified("S00", '"e"', None, None, NOW, NOW + timedelta(hours=1)))
            await asyncio.sleep(0.5)

        asyncio.run(wait_for_tick())
        assert len(batch) == 0
        assert store.source_state("S00").etag == '"e"'


def test_a_full_batch_is_written_at_once(tmp_path: Path, store_url: str) -> None:
    config = _config(tmp_path, store_url, n=5)
    with Store.open(config.store) as store:
        store.sync_sources([(s.label, s.kind, s.url) for s in config.sources])
        batch = NotModifiedBatch(store, delay=3600, max_size=2)

        async def fill() -> None:
            for i in range(4):
                batch.add(NotModified(f"S{i:02d}", f'"{i}"', None, None, NOW, None))
            await asyncio.sleep(0.3)

        asyncio.run(fill())
        assert len(batch) == 0
        assert [store.source_state(f"S{i:02d}").etag for i in range(5)] == [
            '"0"',
            '"1"',
            '"2"',
            '"3"',
            None,
        ]


def test_a_batch_the_store_refuses_is_dropped_and_forgotten(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    config = _config(tmp_path, store_url, n=2)
    source = config.sources[0]
    with Store.open(config.store) as store:
        fetcher = Fetcher304()
        pipeline = _pipeline(config, store, fetcher)

        def refuse(polls: Any) -> None:
            raise StoreError("store: database is locked")

        async def cycle() -> None:
            await pipeline.poll(source)
            monkeypatch.setattr(store, "record_not_modified", refuse)
            await pipeline.flush_unchanged()
            monkeypatch.undo()
            await pipeline.poll(source, force=True)

        asyncio.run(cycle())
        assert "1 unchanged polls not recorded" in caplog.text
        # The cached state was forgotten: the next poll read the store's (no ETag yet).
        assert [etag for _, etag in fetcher.sent] == [None, None]


def test_a_crash_before_the_flush_loses_only_the_304_state(tmp_path: Path, store_url: str) -> None:
    """SIGKILL before the batch is written: the source keeps its previous state (so it
    is simply polled again, with its previous validators) and nothing else is lost."""
    config = _config(tmp_path, store_url, n=1)
    source = config.sources[0]
    with Store.open(config.store) as store:
        pipeline = _pipeline(config, store, Fetcher304())
        before = store.source_state(source.label)
        asyncio.run(pipeline.poll(source))
        assert len(pipeline.unchanged) == 1
        # the process dies here: the pipeline and its batch are gone, the store is not
    with Store.open(config.store) as store:
        assert store.source_state(source.label) == before
        fetcher = Fetcher304()
        again = _pipeline(config, store, fetcher)
        assert asyncio.run(again.poll(source)).status == "not-modified"
        assert fetcher.sent == [(source.url, before.etag)]


def test_closing_the_runtime_writes_the_waiting_304s(
    http_server: LoopbackHTTP, tmp_path: Path, store_url: str
) -> None:
    """What the daemon does at shutdown: the runtime closes after writing the batch."""
    http_server.routes["/f.xml"] = feed_with_etag(rss(RELEVANT, "f"), '"v1"')
    path = tmp_path / "watchtower.yaml"
    path.write_text(
        f"store: '{store_url}'\n{shipped_baseline_yaml(tmp_path)}\n"
        "fetch: {allow_private_addresses: true, timeout: 5s}\n"
        f"sources:\n  - {{name: F, feed: '{http_server.url('/f.xml')}', every: 10m}}\n"
    )
    config = load_config(path)
    source = config.feed_and_page_sources()[0]
    later = NOW + timedelta(hours=1)

    async def scenario() -> None:
        async with Runtime(config) as runtime:
            runtime.pipeline.clock = lambda: NOW
            assert (await runtime.pipeline.poll(source)).status == "ok"
            runtime.pipeline.clock = lambda: later
            assert (await runtime.pipeline.poll(source)).status == "not-modified"
            assert len(runtime.pipeline.unchanged) == 1

    asyncio.run(scenario())
    with Store.open(store_url) as store:
        state = store.source_state("F")
    assert state.etag == '"v1"' and state.last_success_at == later
    assert state.next_due_at == later + timedelta(minutes=10)
