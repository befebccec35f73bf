"""``watchtower status``: per-source health, the outbox backlog and dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from watchtower.config import Config


def render_status(store: Any, config: Config, now: datetime) -> str:
    """A plain-text table an operator can read without knowing the code."""
    configured = {s.name for s in config.feed_and_page_sources() if s.enabled}
    lines = [
        f"{'source':<32} {'state':<9} {'last success':<17} {'fails':>5} "
        f"{'items/1d':>8} {'alerts/1d':>9}  next run / last error"
    ]
    store_failures = 0
    for health in store.source_health(now):
        if health.name not in configured:
            continue
        lines.append(_source_line(health, now))
        if health.consecutive_failures and (health.last_error or "").startswith("store:"):
            store_failures += 1
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


def _source_line(health: Any, now: datetime) -> str:
    if health.last_polled_at is None:
        state = "new"
    elif health.consecutive_failures:
        state = "failing"
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
