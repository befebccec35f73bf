"""The outbox worker: pending deliveries → webhooks and immediate email, at least once.

Deliveries are written by ``Store.record_poll`` in the same transaction as their alert,
one per channel that :func:`channels_for` names. :class:`DeliveryWorker` claims the due
ones (a lease, so a crashed worker's rows come back after it expires), sends each, and
marks it sent only after the receiver accepted it (HTTP 2xx, SMTP 250). A crash between
acceptance and ``mark_sent`` re-sends once the lease expires, with the same
``webhook-id`` / Message-ID, so receivers can drop the duplicate.

Failures are retried on the Standard Webhooks schedule — 5 s, 5 min, 30 min, 2 h, 5 h,
10 h, 10 h… after the first, second… failed attempt, ±10 % jitter, never earlier than
the receiver's ``Retry-After`` — and become dead letters after ``notify.max_attempts``
attempts (``Store.dead_deliveries()`` lists them, ``Store.requeue()`` re-queues).
A webhook answering 410 Gone is disabled (``Store.disable_channel``) and its pending
deliveries are cancelled. Deliveries for a channel that is no longer configured stay
pending (logged once) so that putting the channel back delivers them.

``savepagenow`` deliveries (``archive.save_page_now: true``, pass ``save_page_now``) ask
the Internet Archive to capture the alert's URL (:mod:`watchtower.notify.savepagenow`).

``digest`` deliveries are not sent here: :mod:`watchtower.notify.digest` batches them;
the worker only re-sends a digest left half-sent by a crash or a mail outage.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, ParamSpec, TypeVar

from watchtower import metrics
from watchtower.errors import DeliveryError, PermanentDeliveryError, StoreError
from watchtower.notify.channels import DIGEST_CHANNEL, SAVE_PAGE_NOW_CHANNEL

# The senders (HTTP client, SMTP, templates, Apprise) are imported by the first
# delivery that needs them: a poll that sends nothing never loads them.
if TYPE_CHECKING:
    import httpx

    from watchtower.alertobject import LinkMaker
    from watchtower.config import NotifyConfig, WebhookConfig
    from watchtower.config.apprise import AppriseConfig
    from watchtower.config.evidence import ArchiveConfig
    from watchtower.store import AlertView, DeliveryJob, Store

__all__ = [
    "EMAIL_CHANNEL",
    "RETRY_SCHEDULE",
    "DeliveryStats",
    "DeliveryWorker",
    "channels_for",
    "retry_delay",
]

log = logging.getLogger(__name__)
EVENTS_LANE = "events"  # the delivery lane of source health events

EMAIL_CHANNEL = "email"
#: Seconds before attempt n+1 after n failed attempts (index n; the last repeats).
RETRY_SCHEDULE: tuple[float, ...] = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
_JITTER = 0.1
_CLAIM_LIMIT = 50
_CONCURRENCY = 8
_LEASE = timedelta(minutes=5)

P = ParamSpec("P")
T = TypeVar("T")
Result = Literal["sent", "retried", "dead", "skipped"]


def channels_for(cfg: NotifyConfig) -> Callable[[float], list[str]]:
    """Which channels want an alert of a given score (pass it to ``Store.record_poll``).

    ``webhook:<key>`` for each webhook and ``apprise:<key>`` for each Apprise URL with
    ``score >= min_score``; ``email`` when
    ``score >= email.immediate_min_score``; ``digest`` whenever email with a digest
    cron is configured.
    """
    hooks = [(f"webhook:{hook.key}", hook.min_score) for hook in cfg.webhooks]
    hooks += [(entry.channel, entry.min_score) for entry in cfg.apprise]
    email = cfg.email
    immediate = email.immediate_min_score if email is not None else None
    digest = email is not None and bool(email.digest)

    def channels(score: float) -> list[str]:
        wanted = [channel for channel, min_score in hooks if score >= min_score]
        if immediate is not None and score >= immediate:
            wanted.append(EMAIL_CHANNEL)
        if digest:
            wanted.append(DIGEST_CHANNEL)
        return wanted

    return channels


def retry_delay(failed_attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failed_attempts`` (≥ 1) failures, with ±10 % jitter."""
    index = min(max(failed_attempts, 1), len(RETRY_SCHEDULE) - 1)
    return RETRY_SCHEDULE[index] * (1.0 - _JITTER + 2 * _JITTER * rng())


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """What one worker pass did: deliveries sent, scheduled for retry, dead-lettered."""

    sent: int = 0
    retried: int = 0
    dead: int = 0

    def __add__(self, other: DeliveryStats) -> DeliveryStats:
        return DeliveryStats(
            self.sent + other.sent, self.retried + other.retried, self.dead + other.dead
        )


class DeliveryWorker:
    """Claims due deliveries and sends them; see the module docstring for the contract.

    ``clock`` (Unix seconds) and ``rng`` (uniform in [0, 1)) are injectable so tests can
    step through the retry schedule without sleeping. ``client`` is used for webhooks
    (or a function that makes it on the first request; the caller closes it); when
    ``None`` the worker makes a plain ``httpx.AsyncClient(follow_redirects=False)`` and
    closes it in :meth:`aclose`. Store calls run in a thread, one at a time.
    ``links`` (set when ``web.public_url`` is) puts the feedback links into webhook
    bodies and emails.
    """

    def __init__(
        self,
        store: Store,
        notify: NotifyConfig,
        *,
        client: httpx.AsyncClient | Callable[[], httpx.AsyncClient] | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        links: LinkMaker | None = None,
        save_page_now: ArchiveConfig | None = None,
    ) -> None:
        self._store = store
        self._links = links
        self._spn = save_page_now if save_page_now and save_page_now.save_page_now else None
        self._notify = notify
        self._client = None if callable(client) else client  # a client is not callable
        self._client_factory = client if callable(client) else None
        self._own_client = client is None
        self._clock = clock
        self._rng = rng
        self._webhooks: dict[str, WebhookConfig] = {
            f"webhook:{hook.key}": hook for hook in notify.webhooks
        }
        self._apprise: dict[str, AppriseConfig] = {a.channel: a for a in notify.apprise}
        from watchtower.notify.events import EventSender

        self._events = EventSender(
            store,
            notify,
            http=self._http,
            clock=clock,
            delay=lambda attempts: retry_delay(attempts, self._rng),
        )
        email = notify.email
        self._immediate = email is not None and email.immediate_min_score is not None
        self._digest = email is not None and bool(email.digest)
        self._warned: set[str] = set()
        self._digest_failures = 0
        self._digest_next_try = 0.0

    # -- public ------------------------------------------------------------------------

    def lanes(self) -> list[str]:
        """The channels that can be run apart (``run_once(lanes=[...])``): each webhook,
        ``email`` for immediate mails, ``digest`` for re-sending half-sent digests and
        ``events`` for source health events.

        The daemon runs one lane per channel so that one stuck receiver never delays
        another: a lane's next pass waits only for that lane's previous one.
        """
        lanes = self._configured()
        if self._notify.email is not None:
            lanes.append(DIGEST_CHANNEL)
        lanes.append(EVENTS_LANE)
        return lanes

    async def run_once(self, lanes: Sequence[str] | None = None) -> DeliveryStats:
        """One pass: claim every due non-digest delivery, send each, record the result.

        Also re-sends a digest left half-sent (with backoff) when email is configured.
        ``lanes`` (see :meth:`lanes`) limits the pass to those channels; each channel
        has its own concurrency. Never raises for a delivery failure; a database failure
        is logged and the pass ends (the leases expire and the rows come back).
        """
        stats, _claimed = await self._pass(lanes)
        return stats

    async def drain(self, deadline: float) -> DeliveryStats:
        """Run passes until nothing is due now or ``clock() >= deadline``.

        Used by ``run --once`` and at shutdown. Work still running at the deadline is
        cancelled; its rows stay leased and are re-sent (same ids) after the lease.
        """
        total = DeliveryStats()
        while (remaining := deadline - self._clock()) > 0:
            try:
                async with asyncio.timeout(remaining):
                    stats, claimed = await self._pass()
            except TimeoutError:
                log.warning("delivery drain stopped at its deadline; the rest is retried later")
                break
            total += stats
            if claimed == 0:
                break
        return total

    async def aclose(self) -> None:
        """Close the HTTP client if the worker made it."""
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> DeliveryWorker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- one pass ------------------------------------------------------------------------

    async def _pass(self, lanes: Sequence[str] | None = None) -> tuple[DeliveryStats, int]:
        now = self._now()
        try:
            disabled = await self._call(self._store.disabled_channels)
            await self._call(self._housekeeping, disabled)
            jobs = await self._claim(now, disabled, lanes)
        except StoreError as exc:
            _store_failed(self._store, "delivery worker: store unavailable: %s", exc)
            return DeliveryStats(), 0
        stats = DeliveryStats()
        if jobs:
            gates: dict[str, asyncio.Semaphore] = {}

            async def bounded(job: DeliveryJob) -> Result:
                gate = gates.setdefault(job.channel, asyncio.Semaphore(_CONCURRENCY))
                async with gate:
                    return await self._deliver(job)

            results = await asyncio.gather(*(bounded(job) for job in jobs))
            stats = DeliveryStats(
                sent=results.count("sent"),
                retried=results.count("retried"),
                dead=results.count("dead"),
            )
            log.info(
                "deliveries: %d sent, %d to retry, %d dead", stats.sent, stats.retried, stats.dead
            )
        events, claimed_events = (
            await self._event_pass(disabled)
            if lanes is None or EVENTS_LANE in lanes
            else (DeliveryStats(), 0)
        )
        if lanes is None or DIGEST_CHANNEL in lanes:
            await self._resume_digest()
        return stats + events, len(jobs) + claimed_events

    async def _event_pass(self, disabled: dict[str, str]) -> tuple[DeliveryStats, int]:
        """Send the due source health events (see :mod:`watchtower.notify.events`)."""
        results = await self._events.run_pass(disabled)
        stats = DeliveryStats(
            sent=results.count("sent"), retried=results.count("retried"), dead=results.count("dead")
        )
        return stats, len(results)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._store.run(fn, *args, **kwargs)

    def _configured(self) -> list[str]:
        channels = [*self._webhooks, *self._apprise]
        if self._immediate:
            channels.append(EMAIL_CHANNEL)
        if self._spn is not None:
            channels.append(SAVE_PAGE_NOW_CHANNEL)
        return channels

    async def _claim(
        self, now: datetime, disabled: dict[str, str], lanes: Sequence[str] | None = None
    ) -> list[DeliveryJob]:
        jobs: dict[int, DeliveryJob] = {}
        stray: list[int] = []
        wanted = [c for c in self._configured() if c not in disabled]
        claiming = wanted if lanes is None else [c for c in wanted if c in lanes]
        for channel in claiming:
            claimed = await self._call(
                self._store.claim_deliveries,
                now,
                limit=_CLAIM_LIMIT,
                lease=_LEASE,
                channel_prefix=channel,
            )
            for job in claimed:
                if job.channel in wanted:
                    jobs[job.id] = job
                elif job.id not in jobs:
                    stray.append(job.id)
        if stray:  # a prefix matched a channel we do not send (e.g. "webhook:a" ~ "webhook:ab")
            await self._call(self._release, stray)
        return sorted(jobs.values(), key=lambda j: j.id)

    def _release(self, ids: Sequence[int]) -> None:
        self._store.release_deliveries(ids)

    def _housekeeping(self, disabled: dict[str, str]) -> None:
        """Cancel what waits for disabled channels; warn once about unconfigured ones."""
        known = set(self._configured())
        if self._digest:
            known.add(DIGEST_CHANNEL)
        for channel in disabled:
            self._store.cancel_pending(channel, f"{channel} is disabled")
        rows = self._store.pending_by_channel().items()
        for channel, count in rows:
            if channel in known or channel in disabled or channel in self._warned:
                continue
            self._warned.add(channel)
            log.warning(
                "%d deliveries wait for channel %s, which is not configured; they stay "
                "pending and go out if it is configured again",
                count,
                channel,
            )

    # -- one delivery --------------------------------------------------------------------

    async def _deliver(self, job: DeliveryJob) -> Result:
        started = time.monotonic()
        try:
            result = await self._attempt(job)
        except StoreError as exc:
            _store_failed(
                self._store,
                "delivery %d: store failed, will come back after its lease: %s",
                job.id,
                exc,
            )
            result = "skipped"
        metrics.observe_delivery(job.channel, result, time.monotonic() - started)
        return result

    async def _attempt(self, job: DeliveryJob) -> Result:
        alert = await self._call(self._store.alert_view, job.alert_id)
        if alert is None:
            await self._call(self._store.mark_dead, job.id, "alert no longer in the store")
            return "dead"
        try:
            await self._send(job, alert)
        except PermanentDeliveryError as exc:
            return await self._permanent(job, exc)
        except DeliveryError as exc:
            return await self._retry(job, exc.reason, exc.retry_after)
        except Exception as exc:  # a bug must not stop the other deliveries
            log.exception("delivery %d on %s failed unexpectedly", job.id, job.channel)
            return await self._retry(job, f"internal error: {type(exc).__name__}", None)
        await self._call(self._store.mark_sent, job.id, self._now())
        log.info("delivered alert %d on %s as %s", job.alert_id, job.channel, job.message_id)
        return "sent"

    async def _send(self, job: DeliveryJob, alert: AlertView) -> None:
        if job.channel == EMAIL_CHANNEL:
            email = self._notify.email
            if email is None:  # pragma: no cover - only claimed when configured
                raise DeliveryError("email is not configured")
            from watchtower.notify.email import render_alert_email, send_message

            message = render_alert_email(alert, email, job.message_id, links=self._links)
            await send_message(email.smtp, message)
            return
        if job.channel == SAVE_PAGE_NOW_CHANNEL:
            await self._save_page_now(alert)
            return
        if job.channel in self._apprise:
            await self._send_apprise(self._apprise[job.channel], alert)
            return
        from watchtower.notify.webhook import post_webhook, webhook_payload

        hook = self._webhooks[job.channel]
        verdicts = await self._call(self._store.feedback_for, [alert.id])
        payload = webhook_payload(alert, feedback=verdicts.get(alert.id), links=self._links)
        await post_webhook(self._http(hook), hook, job.message_id, payload, now=self._clock())

    async def _save_page_now(self, alert: AlertView) -> None:
        if self._spn is None:  # pragma: no cover - only claimed when configured
            raise DeliveryError("save page now is not configured")
        from watchtower.notify.savepagenow import request_capture

        if self._client is None:
            self._client = self._new_client(None)
        await request_capture(self._client, self._spn, alert.url, now=self._clock())

    async def _send_apprise(self, entry: AppriseConfig, alert: AlertView) -> None:
        from watchtower.notify.apprise import alert_message, send_apprise

        title, body = alert_message(alert)
        await send_apprise(entry, title, body)

    def _http(self, hook: WebhookConfig) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._new_client(hook.timeout.total_seconds())
        return self._client

    def _new_client(self, timeout: float | None) -> httpx.AsyncClient:
        if self._client_factory is not None:
            return self._client_factory()
        import httpx

        if timeout is None:
            return httpx.AsyncClient(follow_redirects=False)
        return httpx.AsyncClient(follow_redirects=False, timeout=timeout)

    async def _permanent(self, job: DeliveryJob, exc: PermanentDeliveryError) -> Result:
        await self._call(self._store.mark_dead, job.id, exc.reason)
        if job.channel.startswith("webhook:"):
            reason = "the receiver answered 410 Gone"
            await self._call(self._store.disable_channel, job.channel, reason, self._now())
            await self._call(self._housekeeping, {job.channel: reason})
            log.error(
                "%s answered 410 Gone: endpoint disabled and its pending deliveries "
                "cancelled; fix or remove it in the config",
                job.channel,
            )
        else:
            log.error("delivery %d on %s refused for good: %s", job.id, job.channel, exc.reason)
        return "dead"

    async def _retry(self, job: DeliveryJob, reason: str, retry_after: float | None) -> Result:
        attempts = job.attempts + 1
        if attempts >= self._notify.max_attempts:
            await self._call(self._store.mark_dead, job.id, reason)
            log.error(
                "delivery %d of alert %d on %s is a dead letter after %d attempts: %s",
                job.id,
                job.alert_id,
                job.channel,
                attempts,
                reason,
            )
            return "dead"
        delay = max(retry_delay(attempts, self._rng), retry_after or 0.0)
        when = self._now() + timedelta(seconds=delay)
        await self._call(self._store.mark_retry, job.id, reason, when)
        log.warning(
            "delivery %d on %s failed (attempt %d of %d), retry in %.0fs: %s",
            job.id,
            job.channel,
            attempts,
            self._notify.max_attempts,
            delay,
            reason,
        )
        return "retried"

    # -- half-sent digests ---------------------------------------------------------------

    async def _resume_digest(self) -> None:
        email = self._notify.email
        if email is None or self._clock() < self._digest_next_try:
            return
        from watchtower.notify.digest import resume_digests

        try:
            sent = await resume_digests(self._store, email, now=self._now(), links=self._links)
        except DeliveryError as exc:
            self._digest_failures += 1
            delay = retry_delay(self._digest_failures, self._rng)
            self._digest_next_try = self._clock() + delay
            log.warning("unsent digest: %s; next try in %.0fs", exc.reason, delay)
            return
        except StoreError as exc:
            _store_failed(self._store, "unsent digest: store failed: %s", exc)
            return
        if sent:
            self._digest_failures = 0
        self._digest_next_try = 0.0


def _store_failed(store: Store, message: str, *args: object) -> None:
    """Log a store failure as an ERROR, unless it belongs to an outage the store has
    already logged once (then DEBUG: :mod:`watchtower.store.outage` counts it)."""
    level = logging.DEBUG if store.availability.counts().down else logging.ERROR
    log.log(level, message, *args)
