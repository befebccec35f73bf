"""Everything built from one Config: store, matcher, fetcher, pipeline, delivery worker.

``run_once`` is ``watchtower run --once``: poll every source once, deliver what is
due, close everything, and return a summary.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from watchtower.config import Config, SourceConfig
from watchtower.dedupe import MinHashStoryIndex
from watchtower.fetch import Fetcher
from watchtower.matcher import Matcher, build_matcher
from watchtower.notify.outbox import DeliveryWorker, channels_for
from watchtower.pipeline import Pipeline, PollReport
from watchtower.sources import worker
from watchtower.store import Store
from watchtower.store import lock as store_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What one pass over the sources did."""

    polls: int
    new_items: int
    new_alerts: int
    errors: int
    deliveries_sent: int = 0
    deliveries_retrying: int = 0


def baseline_cache_path(config: Config) -> Path:
    """Where the computed baseline is cached: ``baseline.cache``, else
    ``baseline-cache.json`` next to the SQLite database, else next to the config file.
    """
    if config.baseline.cache is not None:
        return Path(config.baseline.cache)
    from sqlalchemy.engine import make_url

    url = make_url(config.store)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).parent / "baseline-cache.json"
    return config.path.parent / "baseline-cache.json"


@contextmanager
def open_store(config: Config) -> Iterator[Store]:
    """The configured store with the near-duplicate story index; closed on exit."""
    store = Store.open(config.store, story_index_factory=MinHashStoryIndex)
    try:
        yield store
    finally:
        store.close()


def load_matcher(config: Config) -> Matcher:
    return build_matcher(config.baseline, cache_path=baseline_cache_path(config))


class Runtime:
    """Owns the long-lived parts; rebuildable piecewise on reload.

    Entering it takes the store's instance lock (:mod:`watchtower.store.lock`) and
    raises ``StoreBusyError`` when another daemon or ``run --once`` holds it.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._stack = AsyncExitStack()
        self.instance: store_lock.InstanceLock
        self.store: Store
        self.pipeline: Pipeline
        self.delivery: DeliveryWorker

    async def __aenter__(self) -> Runtime:
        try:
            return await self._open()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _open(self) -> Runtime:
        config = self.config
        # One running Watchtower per store (daemon or run --once): refuse before any
        # work; the lock is held until this runtime closes, or the process ends.
        self.instance = await asyncio.to_thread(store_lock.acquire, config.store)
        self._stack.callback(self.instance.release)
        self.store = await asyncio.to_thread(
            Store.open, config.store, story_index_factory=MinHashStoryIndex
        )
        self._stack.callback(self.store.close)
        # Holding the instance lock, any delivery still "sending" was left by a process
        # that died mid-send: it is due again now, not when its lease runs out.
        abandoned = await asyncio.to_thread(self.store.release_abandoned)
        if abandoned:
            log.info("%d deliveries left sending by a previous run are due again", abandoned)
        self._stack.callback(worker.shutdown_workers)
        matcher = await asyncio.to_thread(load_matcher, config)
        fetcher = await self._stack.enter_async_context(Fetcher.from_config(config.fetch))
        self.pipeline = Pipeline(config, self.store, matcher, fetcher, channels_for(config.notify))
        self._client = await self._stack.enter_async_context(
            httpx.AsyncClient(follow_redirects=False)
        )
        self.delivery = DeliveryWorker(self.store, config.notify, client=self._client)
        await asyncio.to_thread(self.sync_sources, config.feed_and_page_sources())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def sync_sources(self, sources: Iterable[SourceConfig]) -> None:
        self.store.sync_sources([(s.label, s.kind, s.url) for s in sources])

    def apply(self, config: Config, *, matcher: Matcher | None = None) -> None:
        """Switch to a reloaded config (same store) without a restart."""
        self.config = config
        self.pipeline.config = config
        self.pipeline.channels = channels_for(config.notify)
        if matcher is not None:
            self.pipeline.scorer = matcher
        self.delivery = DeliveryWorker(self.store, config.notify, client=self._client)


async def poll_all(runtime: Runtime, sources: Iterable[SourceConfig]) -> list[PollReport]:
    """Poll sources concurrently (the pipeline bounds them by service.max_concurrent_polls)."""
    return list(
        await asyncio.gather(*(runtime.pipeline.poll(s, force=True) for s in sources if s.enabled))
    )


async def run_once_async(config: Config) -> RunSummary:
    async with Runtime(config) as runtime:
        reports = await poll_all(runtime, config.feed_and_page_sources())
        stats = await runtime.delivery.run_once()
    summary = RunSummary(
        polls=len(reports),
        new_items=sum(r.new_items for r in reports),
        new_alerts=sum(r.new_alerts for r in reports),
        errors=sum(r.status == "error" for r in reports),
        deliveries_sent=stats.sent,
        deliveries_retrying=stats.retried,
    )
    log.info(
        "run --once: %d sources polled (%d failed), %d new items, %d new alerts, "
        "%d deliveries sent, %d to retry",
        summary.polls,
        summary.errors,
        summary.new_items,
        summary.new_alerts,
        summary.deliveries_sent,
        summary.deliveries_retrying,
    )
    return summary


def run_once(config: Config) -> RunSummary:
    """``watchtower run --once``."""
    return asyncio.run(run_once_async(config))
