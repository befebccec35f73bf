"""Everything built from one Config: store, matcher, fetcher, pipeline, delivery worker.

``run_once`` is ``watchtower run --once``: poll every source once, deliver what is
due, close everything, and return a summary.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from watchtower import health
from watchtower.config import Config, SourceConfig
from watchtower.dedupe import MinHashStoryIndex
from watchtower.fetch import Fetcher
from watchtower.matcher import Matcher, build_matcher
from watchtower.notify.digest import DIGEST_CHANNEL
from watchtower.notify.outbox import DeliveryStats, DeliveryWorker, channels_for
from watchtower.pipeline import Pipeline, PollReport
from watchtower.sources import worker
from watchtower.store import Store

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
    deliveries_left: int = 0


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
    """Owns the long-lived parts; rebuildable piecewise on reload."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._stack = AsyncExitStack()
        self.store: Store
        self.pipeline: Pipeline
        self.delivery: DeliveryWorker

    async def __aenter__(self) -> Runtime:
        config = self.config
        self.store = await asyncio.to_thread(
            Store.open, config.store, story_index_factory=MinHashStoryIndex
        )
        self._stack.callback(self.store.close)
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
    """Poll sources concurrently (bounded by service.max_concurrent_polls)."""
    limit = asyncio.Semaphore(runtime.config.service.max_concurrent_polls)

    async def one(source: SourceConfig) -> PollReport:
        async with limit:
            return await runtime.pipeline.poll(source, force=True)

    return list(await asyncio.gather(*(one(s) for s in sources if s.enabled)))


async def run_once_async(config: Config) -> RunSummary:
    async with Runtime(config) as runtime:
        reports = await poll_all(runtime, config.feed_and_page_sources())
        await health.check_health(runtime.store, config, datetime.now(UTC))
        stats, left = await deliver_due(runtime, config.service.deliver_timeout.total_seconds())
    summary = RunSummary(
        polls=len(reports),
        new_items=sum(r.new_items for r in reports),
        new_alerts=sum(r.new_alerts for r in reports),
        errors=sum(r.status == "error" for r in reports),
        deliveries_sent=stats.sent,
        deliveries_retrying=stats.retried,
        deliveries_left=left,
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


async def deliver_due(runtime: Runtime, timeout: float) -> tuple[DeliveryStats, int]:
    """Deliver everything due now, for at most ``timeout`` seconds.

    Returns what was done and how many deliveries (alerts and source health events, not
    the digest) are still waiting: failed ones waiting for their retry time, or those
    the timeout cut off. When any are left, one warning says how many and on which
    channels.
    """
    started = time.monotonic()
    stats = await runtime.delivery.drain(time.time() + timeout)
    left = await runtime.store.run(waiting_deliveries, runtime.store)
    if left:
        cut = time.monotonic() - started >= timeout
        log.warning(
            "run --once: %d deliveries not sent yet (%s)%s; the next run or the service sends them",
            sum(left.values()),
            ", ".join(f"{n} on {channel}" for channel, n in sorted(left.items())),
            f", delivery stopped after {timeout:g}s" if cut else "",
        )
    return stats, sum(left.values())


def waiting_deliveries(store: Store) -> dict[str, int]:
    """Deliveries not sent yet per channel: alerts (less the digest) and health events."""
    waiting = {c: n for c, n in store.pending_by_channel().items() if c != DIGEST_CHANNEL}
    events = store.event_delivery_counts()
    unsent = events.get("pending", 0) + events.get("sending", 0)
    if unsent:
        waiting["source health events"] = unsent
    return waiting


def run_once(config: Config) -> RunSummary:
    """``watchtower run --once``."""
    return asyncio.run(run_once_async(config))
