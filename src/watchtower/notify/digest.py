"""The digest email: every alert not yet mailed in a digest, once per cron period.

A *period* is named by the most recent fire time of ``email.digest`` (a 5-field cron in
``email.timezone``) at or before ``now``, as ISO UTC — e.g. ``2026-05-05T07:00:00+00:00``
— or ``manual:<iso>`` when no cron is configured. The ``digest`` table has one row per
period (``period`` is UNIQUE), which is what makes a digest go out once per period even
across restarts and crashes:

1. one transaction: insert ``digest(period, status="sending", message_id)`` and move
   every pending ``digest`` delivery into it (``status="sending"``, ``digest_id``);
2. render and send (SMTP 250);
3. one transaction: the digest and its deliveries become ``sent``.

If the process dies or the mail server is down between 1 and 3, the digest stays
``sending``: the next :func:`send_digest` (any period) or :func:`resume_digests` (the
delivery worker calls it) re-sends it with the *same* Message-ID and the same alerts
instead of building a second one. A second ``--send`` in the same period finds the row
and sends nothing.

Alerts stored while no email digest was configured have no ``digest`` delivery; before
step 1 those created since the period began get one, so the first digest after email is
configured covers its whole period (the preview shows them too). The digest's "Sources"
section lists the source health events since the last digest sent (or the period start).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from email.message import EmailMessage
from typing import TYPE_CHECKING

from watchtower.clock import CronSchedule
from watchtower.errors import DeliveryError, StoreError
from watchtower.notify.channels import DIGEST_CHANNEL
from watchtower.notify.email import send_message
from watchtower.notify.inflight import DIGESTS as _IN_FLIGHT
from watchtower.notify.render import build_message, card, new_token, render_html, render_text
from watchtower.notify.render import zone_of as _zone_of
from watchtower.notify.sanitize import one_line
from watchtower.timeutil import in_zone

if TYPE_CHECKING:
    from watchtower.alertobject import LinkMaker
    from watchtower.config import EmailConfig
    from watchtower.store import AlertView, DigestRow, Store
    from watchtower.store.health import SourceEventView

__all__ = [
    "DIGEST_CHANNEL",
    "DigestOutcome",
    "digest_period",
    "period_label",
    "render_digest",
    "resume_digests",
    "send_digest",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DigestOutcome:
    """What :func:`send_digest` did.

    ``sent`` is true only when a digest email was accepted by the mail server during
    this call. ``reason`` is one human line ("sent", "nothing new", "already sent for
    this period", "not sent: …; will retry", "preview"). ``message`` is the rendered
    email for a preview (and for a send), else ``None``.
    """

    sent: bool
    alert_count: int
    period: str
    reason: str
    message: EmailMessage | None = field(default=None, compare=False, repr=False)


# --- periods ---------------------------------------------------------------------------


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def digest_period(cfg: EmailConfig, now: datetime) -> str:
    """The period key for ``now``: the latest fire time of ``cfg.digest`` ≤ ``now``.

    ISO 8601 UTC (``2026-05-05T07:00:00+00:00``); ``manual:<now ISO UTC>`` when no
    digest cron is configured (or it never fired). Terminates in bounded time in any
    zone and across daylight-saving changes (:class:`~watchtower.clock.CronSchedule`
    gives the rules for skipped and repeated wall-clock times).
    """
    now = _aware(now)
    if cfg.digest:
        fire = CronSchedule(cfg.digest, _zone_of(cfg)).previous(now)
        if fire is not None:
            return fire.astimezone(UTC).isoformat()
    return "manual:" + now.astimezone(UTC).replace(microsecond=0).isoformat()


def period_label(period: str, cfg: EmailConfig) -> str:
    """A human label for a period key, in the configured time zone.

    Never raises: a key that is not a date the zone can show is returned as it is.
    """
    manual = period.startswith("manual:")
    raw = period.removeprefix("manual:")
    try:
        when = in_zone(datetime.fromisoformat(raw), _zone_of(cfg))
    except ValueError:
        when = None
    if when is None:
        return one_line(period, 80)
    text = f"{when:%a} {when.day} {when:%b %Y, %H:%M %Z}"
    return f"{text} (sent by hand)" if manual else text


# --- rendering -------------------------------------------------------------------------


def period_start(cfg: EmailConfig, period: str) -> datetime:
    """When the period named ``period`` began: the cron fire before it (a day before a
    manual period, or one whose fire time cannot be read)."""
    try:
        end = _aware(datetime.fromisoformat(period.removeprefix("manual:")))
    except ValueError:
        return datetime.now(UTC) - timedelta(days=1)
    if cfg.digest and not period.startswith("manual:"):
        before = CronSchedule(cfg.digest, _zone_of(cfg)).previous(end - timedelta(seconds=1))
        if before is not None:
            return before
    return end - timedelta(days=1)


def covered_since(store: Store, cfg: EmailConfig, period: str) -> datetime:
    """Start of what the digest of ``period`` covers: the period's start, or the last
    digest sent if that was later."""
    start = period_start(cfg, period)
    last = store.last_digest_sent_at()
    return max(start, last) if last is not None else start


def _adopt_missing(store: Store, cfg: EmailConfig, period: str, now: datetime) -> int:
    """Give the period's alerts stored before email was configured a digest delivery."""
    missing = store.alerts_missing_digest(period_start(cfg, period))
    return store.add_digest_deliveries(missing, now) if missing else 0


def _preview_views(store: Store, cfg: EmailConfig, period: str) -> list[AlertView]:
    ids = store.pending_digest_alert_ids()
    ids += store.alerts_missing_digest(period_start(cfg, period))
    return _views(store, sorted(set(ids)))


def _digest_events(store: Store, cfg: EmailConfig, period: str) -> list[SourceEventView]:
    return store.source_events(since=covered_since(store, cfg, period))


def render_digest(
    alerts: Sequence[AlertView],
    cfg: EmailConfig,
    period_label: str,
    message_id: str,
    events: Sequence[SourceEventView] = (),
    *,
    links: LinkMaker | None = None,
) -> EmailMessage:
    """The digest email: multipart/alternative (text/plain, then text/html).

    Alerts are ranked by score (highest first); each is one story with its title, every
    outlet with its link, published time, score, the reasons (explanation summary and
    top matches) and, for page alerts, the added lines. ``events`` (source health events
    of the period) make a "Sources" section. All text is escaped, the HTML is
    re-sanitised with an allow-list, only http(s) links survive, and there are no
    scripts, images or remote resources. ``message_id`` is used for the Message-ID
    header (``<id@domain of from>``). With ``links`` (``web.public_url`` set) every alert
    carries its two feedback links.
    """
    zone = _zone_of(cfg)
    ranked = sorted(alerts, key=lambda a: (-float(a.score), a.id))
    cards = [card(a, zone, rank, links=links) for rank, a in enumerate(ranked, start=1)]
    count = len(cards)
    heading = f"Watchtower digest: {period_label}"
    noun = "alert" if count == 1 else "alerts"
    subject = f"{cfg.subject_prefix} Digest {period_label}: {count} {noun}"
    if cards:
        subject += f" (top: {cards[0].title})"
    context = {
        "cards": cards,
        "heading": heading,
        "period_label": period_label,
        "sources": [_event_line(e, zone) for e in events],
    }
    return build_message(
        cfg,
        subject=subject,
        text=render_text("digest.txt.j2", **context),
        html=render_html("digest.html.j2", title=heading, **context),
        message_id=message_id,
        extra_headers=[("X-Watchtower-Digest", period_label)],
    )


def _event_line(event: SourceEventView, zone: tzinfo) -> str:
    what = {"source.failing": "failing", "source.recovered": "recovered", "source.quiet": "quiet"}
    since = event.since.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    state = what.get(event.type, event.type)
    return one_line(f"{event.source}: {state} since {since} — {event.reason}", 300)


# --- state (sync; run in a worker thread) ----------------------------------------------


def _unfinished(store: Store, *, exclude: str | None = None) -> list[DigestRow]:
    return store.unfinished_digests(exclude=exclude)


@dataclass(frozen=True, slots=True)
class _Begin:
    row: DigestRow | None
    reason: str


def _begin(store: Store, period: str, now: datetime, send_empty: bool) -> _Begin:
    """Find or create the digest row of ``period`` (step 1 of the module docstring)."""
    row, reason = store.begin_digest(
        period, now, send_empty=send_empty, message_id=f"digest_{new_token()}"
    )
    return _Begin(row, reason)


def _finish(store: Store, digest_id: int, now: datetime) -> None:
    """Step 3: the digest and all its deliveries are sent, in one transaction."""
    store.finish_digest(digest_id, now)


def _note_failure(store: Store, digest_id: int, error: str) -> None:
    store.note_digest_failure(digest_id, error)


def _views(store: Store, alert_ids: Sequence[int]) -> list[AlertView]:
    views = []
    for alert_id in alert_ids:
        view = store.alert_view(alert_id)
        if view is None:
            log.warning("digest: alert %d is gone from the store; left out", alert_id)
            continue
        views.append(view)
    return views


# --- sending ---------------------------------------------------------------------------


async def _deliver(
    store: Store,
    cfg: EmailConfig,
    row: DigestRow,
    now: datetime,
    links: LinkMaker | None = None,
) -> EmailMessage | None:
    """Render ``row``'s alerts with its Message-ID, send, then mark everything sent.

    ``None`` (nothing done) when this process is already sending ``row``.
    """
    with _IN_FLIGHT.claim(row.id) as mine:
        return await _send_row(store, cfg, row, now, links) if mine else None


async def _send_row(
    store: Store, cfg: EmailConfig, row: DigestRow, now: datetime, links: LinkMaker | None
) -> EmailMessage:
    views = await store.run(_views, store, row.alert_ids)
    events = await store.run(_digest_events, store, cfg, row.period)
    label = period_label(row.period, cfg)
    message = render_digest(views, cfg, label, row.message_id, events, links=links)
    try:
        await send_message(cfg.smtp, message)
    except DeliveryError as exc:
        await store.run(_note_failure, store, row.id, exc.reason)
        raise
    await store.run(_finish, store, row.id, now)
    log.info(
        "digest for %s sent: %d alerts, Message-ID %s",
        row.period,
        len(row.alert_ids),
        message["Message-ID"],
    )
    return message


async def resume_digests(
    store: Store,
    cfg: EmailConfig,
    *,
    now: datetime,
    exclude: str | None = None,
    links: LinkMaker | None = None,
) -> int:
    """Re-send every digest left ``sending`` (crash or mail outage); return how many went.

    Each goes with its original Message-ID and alert set (``exclude`` skips one period;
    a digest this process is sending right now is skipped too). Raises
    :class:`DeliveryError` when the mail server still refuses (the rest wait for the
    next call).
    """
    sent = 0
    for row in await store.run(_unfinished, store, exclude=exclude):
        if await _deliver(store, cfg, row, _aware(now), links) is not None:
            sent += 1
    return sent


async def send_digest(
    store: Store,
    cfg: EmailConfig,
    *,
    now: datetime,
    period: str | None = None,
    preview: bool = False,
    links: LinkMaker | None = None,
) -> DigestOutcome:
    """Send the digest of ``period`` (default :func:`digest_period` of ``now``), once.

    Gathers every alert whose ``digest`` delivery is pending, renders and sends one
    email, and marks it all sent (see the module docstring for the crash-safe steps).
    Earlier digests left ``sending`` are re-sent first. An empty period sends nothing
    unless ``cfg.send_empty_digest``. A mail failure does not raise: the outcome says
    ``not sent: …; will retry`` and the digest is re-sent later with the same
    Message-ID. ``preview=True`` renders what the next send would contain (even when
    empty) and changes nothing. ``links`` makes each alert's feedback links (set when
    ``web.public_url`` is). Raises :class:`StoreError` if the database fails.
    """
    now = _aware(now)
    key = period or digest_period(cfg, now)
    if preview:
        views = await store.run(_preview_views, store, cfg, key)
        events = await store.run(_digest_events, store, cfg, key)
        label = period_label(key, cfg)
        message = render_digest(views, cfg, label, f"preview_{new_token()}", events, links=links)
        return DigestOutcome(False, len(views), key, "preview", message)
    try:
        await resume_digests(store, cfg, now=now, exclude=key, links=links)
    except DeliveryError as exc:
        log.warning("earlier digest not sent, will retry: %s", exc.reason)
        return DigestOutcome(False, 0, key, f"not sent: {exc.reason}; will retry")
    await store.run(_adopt_missing, store, cfg, key, now)
    try:
        begin = await store.run(_begin, store, key, now, cfg.send_empty_digest)
    except StoreError:
        # Another process inserted this period's row at the same moment (UNIQUE period).
        again = await store.run(_begin, store, key, now, False)
        if again.row is not None:
            return DigestOutcome(False, 0, key, "already being sent for this period")
        begin = again
    if begin.row is None:
        log.info("digest for %s: %s", key, begin.reason)
        return DigestOutcome(False, 0, key, begin.reason)
    try:
        mailed = await _deliver(store, cfg, begin.row, now, links)
    except DeliveryError as exc:
        log.warning("digest for %s not sent, will retry: %s", key, exc.reason)
        reason = f"not sent: {exc.reason}; will retry"
        return DigestOutcome(False, len(begin.row.alert_ids), key, reason)
    if mailed is None:
        return DigestOutcome(False, 0, key, "already being sent for this period")
    return DigestOutcome(True, len(begin.row.alert_ids), key, "sent", mailed)
