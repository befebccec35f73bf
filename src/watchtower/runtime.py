"""Everything built from one Config: store, matcher, fetcher, pipeline, delivery worker.

``run_once`` is ``watchtower run --once``: poll every source once, deliver what is
due, close everything, and return a summary.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from watchtower import health
from watchtower.alertobject import LinkMaker
from watchtower.config import Config, SourceConfig
from watchtower.fetch import Fetcher
from watchtower.matcher import Matcher, build_matcher
from watchtower.models import Labelled
from watchtower.notify.channels import DIGEST_CHANNEL, with_save_page_now
from watchtower.notify.outbox import DeliveryStats, DeliveryWorker, channels_for
from watchtower.pipeline import Pipeline, PollReport
from watchtower.review import link_maker
from watchtower.sources import worker
from watchtower.store import Store
from watchtower.store import lock as store_lock
from watchtower.transport import verifying_context

if TYPE_CHECKING:
    import httpx

    from watchtower.alerting import StoryIndex
    from watchtower.feedback_model import FeedbackScorer

log = logging.getLogger(__name__)

#: The label key of a store whose feedback teaches nothing (see :meth:`Runtime.relearn`).
_UNTAUGHT = "untaught"


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


def story_index() -> StoryIndex:
    """The daemon's story index (near-duplicates by MinHash; numpy is imported only
    when a poll first has new items)."""
    from watchtower.story_index import MinHashStoryIndex

    return MinHashStoryIndex()


@contextmanager
def open_store(config: Config) -> Iterator[Store]:
    """The configured store with the near-duplicate story index; closed on exit."""
    store = Store.open(config.store, story_index_factory=story_index)
    try:
        yield store
    finally:
        store.close()


def load_matcher(config: Config) -> Matcher:
    """The scorer every command and the daemon use (``run``, ``score``, ``baseline``).

    The one place where the feedback model will wrap the matcher: the store's
    ``labelled_items()`` are what it learns from. A baseline not cached yet is learnt in
    a child process, so the tables learning loads do not stay in a daemon.
    """
    return build_matcher(config.baseline, cache_path=baseline_cache_path(config), isolated=True)


def load_scorer(config: Config, labelled: Sequence[Labelled] = ()) -> Matcher | FeedbackScorer:
    """The matcher, corrected by the feedback in ``labelled`` (the store's verdicts and
    imported items); the matcher itself when they teach nothing. The model is cached
    next to the baseline cache and retrained only when the labels change."""
    from watchtower.feedback_cache import feedback_scorer

    scorer: Matcher | FeedbackScorer = feedback_scorer(
        load_matcher(config), labelled, baseline_cache_path(config)
    )
    return scorer


def alert_channels(config: Config) -> Callable[[float], list[str]]:
    """The delivery channels of an alert of a given score: ``notify`` and Save Page Now."""
    return with_save_page_now(channels_for(config.notify), config.archive)


def delivery_worker(
    store: Store,
    config: Config,
    client: httpx.AsyncClient | Callable[[], httpx.AsyncClient],
    links: LinkMaker | None = None,
) -> DeliveryWorker:
    """The outbox worker for ``config``: ``notify`` channels and Save Page Now; ``links``
    makes the feedback links of emails and webhook bodies."""
    return DeliveryWorker(
        store, config.notify, client=client, links=links, save_page_now=config.archive
    )


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
        self._matcher: Matcher
        self._labels: str | None = None
        self.delivery: DeliveryWorker
        self.links: LinkMaker | None = None
        self._client: httpx.AsyncClient | None = None  # made by the first delivery

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
            Store.open, config.store, story_index_factory=story_index
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
        self.pipeline = Pipeline(config, self.store, matcher, fetcher, alert_channels(config))
        # Closing (shutdown, end of run --once) writes the 304 states still waiting,
        # before the store closes.
        self._stack.push_async_callback(self.pipeline.flush_unchanged)
        self._matcher = matcher
        await self.relearn()
        self._stack.push_async_callback(self._close_client)
        self.links = await asyncio.to_thread(link_maker, config, self.store)
        self.delivery = delivery_worker(self.store, config, self.http_client, self.links)
        await asyncio.to_thread(self.sync_sources, config.feed_and_page_sources())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def http_client(self) -> httpx.AsyncClient:
        """The HTTP client of deliveries (webhooks, Save Page Now), shared across reloads;
        made on first use, so a run that delivers nothing never loads its machinery."""
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                follow_redirects=False, verify=verifying_context(trust_env=True)
            )
        return self._client

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def relearn(self) -> bool:
        """Score with the store's feedback: when the labelled items (verdicts, imports)
        changed since the last call, retrain (cached) and give the poll the corrected
        scorer. Returns whether the scorer changed. Labels that teach nothing (none
        relevant or not relevant) score with the matcher itself, and the feedback model
        is not even imported."""
        items = await asyncio.to_thread(self.store.labelled_items)
        if not any(i.label in (0, 2) for i in items):
            if self._labels == _UNTAUGHT:
                return False
            self._labels = _UNTAUGHT
            self.pipeline.scorer = self._matcher
            return True
        from watchtower.feedback_cache import feedback_scorer
        from watchtower.feedback_model import labels_digest

        digest = labels_digest(items)
        if digest == self._labels:
            return False
        cache = baseline_cache_path(self.config)
        scorer = await asyncio.to_thread(feedback_scorer, self._matcher, items, cache)
        self._labels = digest
        self.pipeline.scorer = scorer
        if items:
            log.info("scoring with feedback: %d labelled items", len(items))
        return True

    def sync_sources(self, sources: Iterable[SourceConfig]) -> None:
        self.store.sync_sources([(s.label, s.kind, s.url) for s in sources])

    def apply(self, config: Config, *, matcher: Matcher | None = None) -> None:
        """Switch to a reloaded config (same store) without a restart."""
        self.config = config
        self.pipeline.config = config
        self.pipeline.channels = alert_channels(config)
        if matcher is not None:
            self._matcher = matcher
            self._labels = ""  # relearn() corrects the new matcher with the feedback
            self.pipeline.scorer = matcher
        self.links = link_maker(config, self.store)
        self.delivery = delivery_worker(self.store, config, self.http_client, self.links)


async def poll_all(runtime: Runtime, sources: Iterable[SourceConfig]) -> list[PollReport]:
    """Poll the enabled sources, in order, at most ``service.max_concurrent_polls`` at once
    (the pipeline's bound); a few more runners than that take the next source as soon as
    one finishes, so 10,000 sources never mean 10,000 waiting tasks. Reports in order."""
    todo = [s for s in sources if s.enabled]
    reports: list[PollReport | None] = [None] * len(todo)
    queue = iter(enumerate(todo))

    async def runner() -> None:
        for number, source in queue:
            reports[number] = await runtime.pipeline.poll(source, force=True)

    width = min(len(todo), 2 * max(1, runtime.config.service.max_concurrent_polls))
    await asyncio.gather(*(runner() for _ in range(width)))
    return [r for r in reports if r is not None]


async def run_once_async(config: Config) -> RunSummary:
    async with Runtime(config) as runtime:
        reports = await poll_all(runtime, config.feed_and_page_sources())
        await runtime.pipeline.flush_unchanged()  # the health check reads what they wrote
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
