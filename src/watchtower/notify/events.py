"""Delivery of source health events: webhooks, Apprise and a short email, at least once.

Event deliveries are written by ``Store.apply_health`` in the transaction that records
the event. :class:`EventSender` is driven by the delivery worker (one call per pass):
it claims the due ``event_delivery`` rows for the configured channels (a lease), sends
each and marks it sent only after the receiver accepted it (2xx, SMTP 250, Apprise
success). A failure is retried on the alert outbox's schedule and becomes a dead letter
after ``notify.max_attempts`` attempts; a webhook answering 410 Gone is switched off, as
for alerts. The webhook body is
``{"type", "source", "url", "reason", "since"}``, signed like alerts, with the delivery's
stable ``webhook-id``.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from watchtower import metrics
from watchtower.errors import DeliveryError, PermanentDeliveryError, StoreError

# The HTTP client, SMTP, Apprise and templates are imported by the first event that needs them.
if TYPE_CHECKING:
    from email.message import EmailMessage

    import httpx

    from watchtower.config import EmailConfig, NotifyConfig, WebhookConfig
    from watchtower.config.apprise import AppriseConfig
    from watchtower.store import Store
    from watchtower.store.health import EventJob, SourceEventView

__all__ = ["EventSender", "event_email", "event_payload"]

log = logging.getLogger(__name__)

Result = Literal["sent", "retried", "dead"]
_CLAIM_LIMIT = 50
_LEASE = timedelta(minutes=5)


def event_payload(event: SourceEventView) -> dict[str, Any]:
    """The webhook body: ``{"type", "source", "url", "reason", "since"}`` (ISO 8601)."""
    return {
        "type": event.type,
        "source": event.source,
        "url": event.url,
        "reason": event.reason,
        "since": event.since.isoformat(),
    }


def event_email(event: SourceEventView, cfg: EmailConfig, message_id: str) -> EmailMessage:
    """A short email for one health event (text and HTML, same words)."""
    from watchtower.notify.apprise import event_message
    from watchtower.notify.render import build_message

    title, body = event_message(event)
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in body.splitlines())
    return build_message(
        cfg,
        subject=f"{cfg.subject_prefix} {title.removeprefix('Watchtower: ')}",
        text=f"{title}\n\n{body}\n",
        html=f"<!doctype html><html><body><h1>{html.escape(title)}</h1>{paragraphs}</body></html>",
        message_id=message_id,
        extra_headers=[("X-Watchtower-Event", event.type)],
    )


class EventSender:
    """Sends due health-event deliveries for one :class:`NotifyConfig` (see module doc).

    ``http`` returns the worker's HTTP client for a webhook; ``clock`` is Unix seconds;
    ``delay(n)`` is the seconds to wait after ``n`` failed attempts.
    """

    def __init__(
        self,
        store: Store,
        notify: NotifyConfig,
        *,
        http: Callable[[WebhookConfig], httpx.AsyncClient],
        clock: Callable[[], float],
        delay: Callable[[int], float],
    ) -> None:
        self._store = store
        self._notify = notify
        self._http = http
        self._clock = clock
        self._delay = delay
        self._webhooks = {hook.channel: hook for hook in notify.webhooks}
        self._apprise: dict[str, AppriseConfig] = {a.channel: a for a in notify.apprise}

    def channels(self, disabled: dict[str, str]) -> list[str]:
        """The channels this sender delivers to, less the disabled ones."""
        wanted = [*self._webhooks, *self._apprise]
        if self._notify.email is not None:
            wanted.append("email")
        return [channel for channel in wanted if channel not in disabled]

    async def run_pass(self, disabled: dict[str, str]) -> list[Result]:
        """Claim the due event deliveries, send each in turn; one result per claimed row."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        channels = self.channels(disabled)
        if not channels:
            return []
        try:
            jobs = await self._store.run(
                self._store.claim_event_deliveries,
                now,
                channels,
                limit=_CLAIM_LIMIT,
                lease=_LEASE,
            )
        except StoreError as exc:
            log.error("event deliveries: store unavailable: %s", exc)
            return []
        results: list[Result] = []
        for job in jobs:
            started = time.monotonic()
            try:
                results.append(await self._deliver(job))
                metrics.observe_delivery(job.channel, results[-1], time.monotonic() - started)
            except StoreError as exc:
                log.error(
                    "event delivery %d: store failed, retried after its lease: %s", job.id, exc
                )
        return results

    async def _deliver(self, job: EventJob) -> Result:
        try:
            await self._send(job)
        except PermanentDeliveryError as exc:
            await self._refused(job, exc.reason)
            return await self._finish(job, "dead", exc.reason)
        except DeliveryError as exc:
            return await self._failed(job, exc.reason, exc.retry_after)
        except Exception as exc:  # a bug must not stop the other deliveries
            log.exception("event delivery %d on %s failed unexpectedly", job.id, job.channel)
            return await self._failed(job, f"internal error: {type(exc).__name__}", None)
        await self._finish(job, "sent", None)
        log.info(
            "delivered %s of %s on %s as %s",
            job.event.type,
            job.event.source,
            job.channel,
            job.message_id,
        )
        return "sent"

    async def _send(self, job: EventJob) -> None:
        event = job.event
        if job.channel in self._webhooks:
            from watchtower.notify.webhook import post_webhook

            hook = self._webhooks[job.channel]
            payload = event_payload(event)
            await post_webhook(self._http(hook), hook, job.message_id, payload, now=self._clock())
        elif job.channel in self._apprise:
            from watchtower.notify.apprise import event_message, send_apprise

            title, body = event_message(event)
            await send_apprise(self._apprise[job.channel], title, body)
        elif job.channel == "email" and self._notify.email is not None:
            from watchtower.notify.email import send_message

            email = self._notify.email
            await send_message(email.smtp, event_email(event, email, job.message_id))
        else:  # pragma: no cover - only configured channels are claimed
            raise DeliveryError(f"{job.channel} is not configured")

    async def _refused(self, job: EventJob, reason: str) -> None:
        """Refused for good: a webhook (410 Gone) is switched off, as for alerts."""
        log.error("event delivery %d on %s refused for good: %s", job.id, job.channel, reason)
        if job.channel in self._webhooks:
            now = datetime.fromtimestamp(self._clock(), UTC)
            gone = "the receiver answered 410 Gone"
            await self._store.run(self._store.disable_channel, job.channel, gone, now)

    async def _failed(self, job: EventJob, reason: str, retry_after: float | None) -> Result:
        attempts = job.attempts + 1
        if attempts >= self._notify.max_attempts:
            log.error(
                "event delivery %d on %s is a dead letter after %d attempts: %s",
                job.id,
                job.channel,
                attempts,
                reason,
            )
            return await self._finish(job, "dead", reason)
        delay = max(self._delay(attempts), retry_after or 0.0)
        log.warning(
            "event delivery %d on %s failed (attempt %d of %d), retry in %.0fs: %s",
            job.id,
            job.channel,
            attempts,
            self._notify.max_attempts,
            delay,
            reason,
        )
        when = datetime.fromtimestamp(self._clock() + delay, UTC)
        await self._store.run(
            self._store.finish_event_delivery,
            job.id,
            "pending",
            now=when,
            error=reason,
            next_attempt_at=when,
        )
        return "retried"

    async def _finish(
        self, job: EventJob, status: Literal["sent", "dead"], error: str | None
    ) -> Result:
        now = datetime.fromtimestamp(self._clock(), UTC)
        await self._store.run(
            self._store.finish_event_delivery, job.id, status, now=now, error=error
        )
        return status
