"""The long-running service: scheduling, signals, systemd notifications, ordered shutdown.

Lifecycle:
* start inside a running event loop; open the runtime; schedule one poll job per
  source, the delivery worker, the digest and the health check; serve the review page
  on ``web.listen`` when set; tell systemd READY;
* SIGTERM / SIGINT: stop the review page (open requests finish), stop taking new
  work, let in-flight polls and deliveries finish
  within ``service.shutdown_timeout``, log one summary line, exit 0; a second signal
  exits at once;
* SIGHUP: reload the config; sources added, removed or changed are rescheduled; an
  invalid config is refused with its ``file:line`` problems and the old one keeps going.

APScheduler's own shutdown cancels coroutine jobs instead of waiting for them, so every job runs its
work in a task of ours, shielded from that cancellation and drained here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from watchtower import metrics
from watchtower.config import Config, load_config
from watchtower.errors import ConfigError, StoreError
from watchtower.masking import mask_url
from watchtower.review import start_review_page
from watchtower.runtime import RunSummary, Runtime, load_matcher, run_once
from watchtower.scheduler import Scheduler
from watchtower.store.outage import is_outage
from watchtower.systemd import Notifier
from watchtower.units import format_duration

if TYPE_CHECKING:
    from watchtower.web.server import ServerHandle

log = logging.getLogger(__name__)

__all__ = ["Daemon", "RunSummary", "run_once"]

#: Seconds between checks that the store's instance lock is still held (PostgreSQL).
INSTANCE_CHECK_EVERY = float(os.environ.get("WATCHTOWER_INSTANCE_CHECK_EVERY", "15"))


@dataclass
class Tally:
    """Counts for the shutdown summary line."""

    polls: int = 0
    alerts: int = 0
    errors: int = 0
    delivered: int = 0
    started: datetime = field(default_factory=lambda: datetime.now(UTC))


class Daemon:
    """``watchtower run``: runs until a signal stops it; returns the exit code."""

    def __init__(self, config: Config, config_path: Path) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = Notifier.from_env()
        self.tally = Tally()
        self._stop = asyncio.Event()
        self._signals = 0
        self._inflight: set[asyncio.Task[object]] = set()
        self._accepting = True
        self._exit_code = 0
        self.runtime: Runtime
        self.scheduler: Scheduler

    async def run(self) -> int:
        async with Runtime(self.config) as runtime:
            self.runtime = runtime
            self.scheduler = Scheduler(self)
            self.scheduler.start(self.config)
            self._install_signals()
            metrics_server = self._start_metrics()
            web = await self._start_review_page()
            watchdog = asyncio.create_task(self._watchdog())
            guard = asyncio.create_task(self._keep_instance_lock())
            self.notifier.ready()
            self.notifier.status(f"watching {len(self.scheduler.source_jobs)} sources")
            log.info(
                "watchtower started: %d sources, store %s",
                len(self.scheduler.source_jobs),
                _safe_store(self.config.store),
            )
            await self._stop.wait()
            self.notifier.stopping()
            await self._stop_review_page(web)
            await self._shutdown()
            watchdog.cancel()
            guard.cancel()
            if metrics_server is not None:
                metrics_server.close()
        return self._exit_code

    # -- jobs ---------------------------------------------------------------------

    def spawn(self, name: str, work: Callable[[], Awaitable[object]]) -> bool:
        """Start one unit of work in a task of ours that shutdown drains instead of
        cancelling; returns False (and starts nothing) once shutdown has begun.

        The scheduler's job returns at once, so APScheduler never sees a job still
        running (its ``max_instances`` warnings); :class:`Scheduler` itself skips a run
        whose previous one has not finished.
        """
        if not self._accepting:
            return False
        task: asyncio.Task[object] = asyncio.create_task(_guard(name, work))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return True

    def count_poll(self, errors: int, alerts: int) -> None:
        self.tally.polls += 1
        self.tally.errors += errors
        self.tally.alerts += alerts

    def count_delivered(self, sent: int) -> None:
        self.tally.delivered += sent

    # -- signals ------------------------------------------------------------------

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._on_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self._on_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self._on_reload)

    def _on_stop(self, name: str) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("%s again: exiting at once", name)
            os._exit(1)
        log.info(
            "%s received: finishing in-flight work (at most %s)",
            name,
            format_duration(self.config.service.shutdown_timeout),
        )
        self._stop.set()

    def _on_reload(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def reload(self) -> bool:
        """Load the config file again; apply it if valid, else keep the old one.

        Whatever happens, systemd hears ``READY=1`` again with a ``STATUS=`` saying
        whether the reload was applied (a failed reload must not leave it RELOADING).
        """
        self.notifier.reloading()
        try:
            applied = await self._reload()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused: %s", problem)
            log.error("reload refused: still running the previous config")
            applied = False
        except Exception as exc:  # noqa: BLE001  (any failure keeps the old config)
            log.error(
                "reload failed: %s: %s; still running the previous config", type(exc).__name__, exc
            )
            applied = False
        sources = len(self.scheduler.source_jobs)
        self.notifier.ready(
            f"watching {sources} sources"
            if applied
            else f"reload refused, see the log; still watching {sources} sources"
        )
        return applied

    async def _reload(self) -> bool:
        new = await asyncio.to_thread(load_config, self.config_path)
        sources = await asyncio.to_thread(new.feed_and_page_sources)  # OPML problems raise
        matcher = None
        if new.baseline != self.config.baseline:
            matcher = await asyncio.to_thread(load_matcher, new)
        if new.store != self.config.store:
            log.warning("reload: store changed; the new store takes effect after a restart")
        if new.web != self.config.web:
            log.warning("reload: web changed; the review page takes it after a restart")
        await asyncio.to_thread(self.runtime.sync_sources, sources)
        self.runtime.apply(new, matcher=matcher)
        self.config = new
        added, removed, changed = self.scheduler.reschedule(new)
        log.info(
            "config reloaded: %d sources (%d added, %d removed, %d changed)",
            len(sources),
            added,
            removed,
            changed,
        )
        return True

    # -- shutdown -------------------------------------------------------------------

    def _bound(self) -> float:
        return self.config.service.shutdown_timeout.total_seconds()

    async def _shutdown(self) -> None:
        self._accepting = False
        self.runtime.pipeline.stopping = True
        self.scheduler.stop_new_work()
        pending = {t for t in self._inflight if not t.done()}
        if pending:
            done, still = await asyncio.wait(pending, timeout=self._bound())
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=2)
                log.warning(
                    "shutdown: %d tasks did not finish in time and were cancelled", len(still)
                )
        self.scheduler.shutdown()
        store = self.runtime.store
        try:
            await store.run(store.end_beat, os.getpid())
            counts = await store.run(store.counts)
            backlog = (
                f"{counts.get('deliveries_pending', 0) + counts.get('deliveries_sending', 0)} "
                f"deliveries pending, {counts.get('deliveries_dead', 0)} dead"
            )
        except StoreError:
            backlog = "outbox unknown (store unavailable)"
        availability = store.availability.counts()
        log.info(
            "watchtower stopped: %d polls, %d failed, %d new alerts, %d deliveries sent "
            "this run; %d store errors in %d outages; %s",
            self.tally.polls,
            self.tally.errors,
            self.tally.alerts,
            self.tally.delivered,
            availability.errors,
            availability.outages,
            backlog,
        )

    async def _start_review_page(self) -> ServerHandle | None:
        """The review page on ``web.listen``; a failure to listen is logged, not fatal."""
        try:
            return await start_review_page(self.config, self.runtime.store)
        except (OSError, RuntimeError) as exc:
            log.error(
                "review page not started: cannot listen on %s (%s); fix web.listen",
                self.config.web.listen,
                exc,
            )
            return None

    async def _stop_review_page(self, web: ServerHandle | None) -> None:
        """First step of the ordered shutdown: no new page requests; open ones finish."""
        if web is not None:
            await web.stop(timeout=min(self._bound(), 5.0))

    async def _keep_instance_lock(self) -> None:
        """Stop (exit 2) if the store's instance lock was lost to another process."""
        while True:
            await asyncio.sleep(INSTANCE_CHECK_EVERY)
            if await asyncio.to_thread(self.runtime.instance.check):
                continue
            log.error(
                "another Watchtower took over the store while its connection was lost; "
                "stopping this one (one Watchtower per store)"
            )
            self._exit_code = 2
            self._stop.set()
            return

    async def _watchdog(self) -> None:
        interval = self.notifier.watchdog_interval()
        if interval is None:
            return
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    def _start_metrics(self) -> metrics.MetricsServer | None:
        if not self.config.metrics.enabled:
            return None
        return metrics.start_metrics_server(self.config.metrics.listen)


async def _guard(name: str, work: Callable[[], Awaitable[object]]) -> object:
    try:
        return await work()
    except asyncio.CancelledError:
        raise
    except StoreError as exc:
        # Counted by the store, and an outage is logged there once: no traceback per job.
        cause = exc.__cause__
        if cause is not None and is_outage(cause):
            log.debug("job %s: %s", name, exc)
        else:
            log.warning("job %s failed: %s", name, exc)
        return None
    except Exception:
        # A bug in one job must not stop the daemon; it is logged with its traceback.
        log.exception("job %s failed", name)
        return None


def _safe_store(url: str) -> str:
    """The store URL with any password masked."""
    return mask_url(url)
