"""APScheduler 3.11 wiring: one job per source, the delivery worker, digest and health.

Jobs are rebuilt from the config at every start and reload with fixed ids
(``poll:<source>``, ``deliver``, ``digest``, ``health``), so no job store is shared or
persisted (an APScheduler 3 job store must not be shared by processes); "last polled /
next due" lives in our own tables. Every job
coalesces, runs one instance at a time, has a misfire grace close to its interval and a
jitter (the default one-second grace silently drops runs on a busy loop),
and runs on the event loop's own executor (coroutine jobs never go to a thread pool).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watchtower import health, malloc
from watchtower.clock import CronScheduleTrigger
from watchtower.config import Config, SourceConfig
from watchtower.notify.digest import send_digest
from watchtower.runtime import Runtime

log = logging.getLogger(__name__)

DELIVERY_EVERY = 5.0
RELEARN_EVERY = 30  # seconds: feedback (a verdict, an import) reaches the scorer this soon
TRIM_EVERY = 60  # seconds between hand-backs of freed memory to the system
FIRST_POLL_SPREAD = 10.0


class Host(Protocol):
    """What the scheduler's jobs need from whoever runs them (the daemon).

    ``config`` and ``runtime`` are read at each job run (a reload replaces them);
    ``spawn`` starts a job's work in a task that shutdown drains (False once shutdown
    has begun); the counters feed the summary line.
    """

    config: Config
    runtime: Runtime

    def spawn(self, name: str, work: Callable[[], Awaitable[object]]) -> bool: ...

    def count_poll(self, errors: int, alerts: int) -> None: ...

    def count_delivered(self, sent: int) -> None: ...


class Scheduler:
    """Owns the APScheduler instance for one daemon (its :class:`Host`)."""

    def __init__(self, daemon: Host) -> None:
        self.daemon = daemon
        self.aps = AsyncIOScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        self.source_jobs: dict[str, SourceConfig] = {}
        self._running: set[str] = set()
        #: Runs skipped because the previous run of the same job had not finished.
        self.skipped = 0

    def start(self, config: Config) -> None:
        for source in config.feed_and_page_sources():
            if source.enabled:
                self._add_source(source)
        self._add_fixed_jobs(config)
        if config.notify.email is not None and config.notify.email.digest:
            # A digest whose cron time passed while the service was down goes out now;
            # send_digest sends nothing when this period's digest was already sent.
            self.aps.add_job(
                self._digest,
                "date",
                id="digest-catch-up",
                run_date=datetime.now(UTC) + timedelta(seconds=5),
            )
        self.aps.start()

    def reschedule(self, config: Config) -> tuple[int, int, int]:
        """Apply a reloaded config; returns (added, removed, changed) source counts."""
        wanted = {s.label: s for s in config.feed_and_page_sources() if s.enabled}
        removed = [name for name in self.source_jobs if name not in wanted]
        for name in removed:
            self.aps.remove_job(_job_id(name))
            del self.source_jobs[name]
        added = changed = 0
        for name, source in wanted.items():
            old = self.source_jobs.get(name)
            if old == source:
                continue
            added += old is None
            changed += old is not None
            self._add_source(source)
        self._add_fixed_jobs(config)
        return added, len(removed), changed

    def stop_new_work(self) -> None:
        if self.aps.running:
            self.aps.pause()

    def shutdown(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)

    # -- jobs -----------------------------------------------------------------------

    def _add_source(self, source: SourceConfig) -> None:
        every = source.every.total_seconds()
        jitter = min(self.daemon.config.service.jitter.total_seconds(), every / 2)
        spread = min(FIRST_POLL_SPREAD, jitter)
        first = datetime.now(UTC) + timedelta(seconds=random.uniform(0, spread))
        self.source_jobs[source.label] = source
        self.aps.add_job(
            self._poll,
            IntervalTrigger(seconds=every, jitter=int(jitter) or None),
            args=[source.label],
            id=_job_id(source.label),
            name=f"poll {source.label}",
            replace_existing=True,
            next_run_time=first,
            misfire_grace_time=max(int(every), 1),
        )

    def _add_fixed_jobs(self, config: Config) -> None:
        self._every("deliver", DELIVERY_EVERY, self._deliver)
        self._every("health", health.check_interval(config).total_seconds(), self._health)
        self._every("relearn", RELEARN_EVERY, self._relearn)
        self._every("trim", TRIM_EVERY, self._trim)
        email = config.notify.email
        if email is not None and email.digest:
            trigger = CronScheduleTrigger(email.digest, email.timezone)
            self.aps.add_job(
                self._digest,
                trigger,
                id="digest",
                replace_existing=True,
                misfire_grace_time=3600,
            )
        elif self.aps.get_job("digest") is not None:
            self.aps.remove_job("digest")

    def _every(self, job_id: str, seconds: float, func: Any) -> None:
        self.aps.add_job(
            func,
            IntervalTrigger(seconds=seconds),
            id=job_id,
            replace_existing=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=seconds / 2),
            misfire_grace_time=max(int(seconds), 1),
        )

    async def _poll(self, name: str) -> None:
        source = self.source_jobs.get(name)
        if source is None:
            return

        async def work() -> None:
            report = await self.daemon.runtime.pipeline.poll(source)
            if report.status not in ("skipped", "cancelled"):  # only polls that finished
                self.daemon.count_poll(int(report.status == "error"), report.new_alerts)

        self._start_once(f"poll {name}", work)

    async def _relearn(self) -> None:
        async def work() -> None:
            await self.daemon.runtime.relearn()

        self._start_once("relearn", work)

    async def _trim(self) -> None:
        """Hand memory the daemon freed back to the system (:mod:`watchtower.malloc`)."""
        await asyncio.to_thread(malloc.trim)

    async def _deliver(self) -> None:
        """One pass per delivery channel, each on its own: a stuck webhook receiver
        only holds back its own channel's next pass, never the others'."""
        delivery = self.daemon.runtime.delivery
        store = self.daemon.runtime.store

        async def beat() -> None:  # tells `deliveries retry` a service is running
            await store.run(store.beat, socket.gethostname(), os.getpid(), datetime.now(UTC))

        self._start_once("beat", beat)
        for lane in delivery.lanes():

            async def work(lane: str = lane) -> None:
                stats = await delivery.run_once([lane])
                self.daemon.count_delivered(stats.sent)

            self._start_once(f"deliver {lane}", work)

    async def _digest(self) -> None:
        email = self.daemon.config.notify.email
        if email is None:
            return

        async def work() -> None:
            runtime = self.daemon.runtime
            outcome = await send_digest(
                runtime.store, email, now=datetime.now(UTC), links=runtime.links
            )
            log.info("digest %s: %s", outcome.period, outcome.reason or "sent")

        self._start_once("digest", work)

    async def _health(self) -> None:
        self._start_once("health", self.check_health)

    def _start_once(self, key: str, work: Callable[[], Awaitable[object]]) -> None:
        """Start ``work`` unless the previous run of ``key`` is still going (a slow poll,
        a poll waiting for a slot of service.max_concurrent_polls, a stuck delivery): that
        run is skipped quietly, as coalescing intends, and counted in ``skipped``.
        """
        if key in self._running:
            self.skipped += 1
            log.debug("%s: previous run still going, this one skipped", key)
            return

        async def once() -> None:
            try:
                await work()
            finally:
                self._running.discard(key)

        self._running.add(key)
        if not self.daemon.spawn(key, once):
            self._running.discard(key)

    async def check_health(self) -> None:
        """Record the source health events now due (see :mod:`watchtower.health`), on
        the store's state after the waiting 304s are written."""
        runtime = self.daemon.runtime
        await runtime.pipeline.flush_unchanged()
        await health.check_health(runtime.store, self.daemon.config, datetime.now(UTC))


def _job_id(name: str) -> str:
    return f"poll:{name}"
