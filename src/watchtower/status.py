"""``watchtower status``: per-source health, the outbox backlog and dead letters.

A source's state is ``new`` (never polled), ``failing``, ``quiet`` (a ``source.quiet``
event was sent and nothing new came since) or ``ok``. Below the table, every source
reported failing or quiet is listed with since when and why, and the source health
events' own outbox is counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from watchtower.config import Config


def render_status(store: Any, config: Config, now: datetime) -> str:
    """A plain-text table an operator can read without knowing the code."""
    configured = {s.name for s in config.feed_and_page_sources() if s.enabled}
    lines = [
        f"{'source':<32} {'state':<9} {'last success':<17} {'fails':>5} "
        f"{'items/1d':>8} {'alerts/1d':>9}  next run / last error"
    ]
    reported = store.health_statuses()
    store_failures = 0
    for health in store.source_health(now):
        if health.name not in configured:
            continue
        lines.append(_source_line(health, now, reported.get(health.name)))
        if health.consecutive_failures and (health.last_error or "").startswith("store:"):
            store_failures += 1
    lines.extend(_reported_lines(reported, configured))
    counts = store.counts()
    pending = counts.get("deliveries_pending", 0) + counts.get("deliveries_sending", 0)
    lines.append("")
    lines.append(
        f"outbox: {pending} pending, {counts.get('deliveries_sent', 0)} sent, "
        f"{counts.get('deliveries_dead', 0)} dead letters"
        + (
            " (watchtower alerts --failed; watchtower deliveries retry --all)"
            if counts.get("deliveries_dead", 0)
            else ""
        )
    )
    events = store.event_delivery_counts()
    lines.append(
        f"health events: {events.get('pending', 0) + events.get('sending', 0)} pending, "
        f"{events.get('sent', 0)} sent, {events.get('dead', 0)} dead letters"
    )
    lines.append(_service_line(store, now))
    lines.append(
        f"store: {counts.get('items', 0)} items, {counts.get('stories', 0)} stories, "
        f"{counts.get('alerts', 0)} alerts"
    )
    if store_failures:
        lines.append(
            f"store errors: {store_failures} source(s) last failed on the store, not on the "
            "source (see their last error)"
        )
    return "\n".join(lines)


#: A service refreshes its heartbeat every few seconds (the delivery job); older than
#: this, it is taken to be gone.
BEAT_STALE = timedelta(seconds=60)


def service_running(store: Any, now: datetime) -> str:
    """One line saying whether a running service will send queued deliveries."""
    beat = store.last_beat()
    if beat is not None and now - beat[2] <= BEAT_STALE:
        host, pid, _when_ = beat
        return f"the service running on {host} (pid {pid}) sends them within seconds"
    seen = f" (last seen {_when(beat[2])})" if beat is not None else ""
    return (
        f"no service is running on this store{seen}: they go out at the next "
        "`watchtower run --once`, or when the service starts"
    )


def _service_line(store: Any, now: datetime) -> str:
    beat = store.last_beat()
    if beat is not None and now - beat[2] <= BEAT_STALE:
        return f"service: running on {beat[0]} (pid {beat[1]})"
    if beat is not None:
        return f"service: not running (last seen {_when(beat[2])})"
    return "service: not running"


def _reported_lines(reported: dict[str, Any], configured: set[str | None]) -> list[str]:
    lines: list[str] = []
    for name in sorted(reported):
        status = reported[name]
        if name not in configured:
            continue
        if status.failing:
            lines.append(f"  {name}: failing since {_when(status.failing_since)}: {status.reason}")
        if status.quiet:
            lines.append(f"  {name}: quiet, nothing new since {_when(status.quiet_since)}")
    return ["", "reported to the channels:", *lines] if lines else []


def _source_line(health: Any, now: datetime, reported: Any = None) -> str:
    if health.last_polled_at is None:
        state = "new"
    elif health.consecutive_failures:
        state = "failing"
    elif reported is not None and reported.quiet:
        state = "quiet"
    else:
        state = "ok"
    success = _when(health.last_success_at)
    tail = health.last_error if health.consecutive_failures else _when(health.next_due_at)
    return (
        f"{health.name[:32]:<32} {state:<9} {success:<17} {health.consecutive_failures:>5} "
        f"{health.items_last_day:>8} {health.alerts_last_day:>9}  {tail or ''}"
    )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"
