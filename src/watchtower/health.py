"""Source health: one event per change of state, written with the state in one transaction.

:func:`check_health` compares every configured source's current state with the state
last reported (``Store.health_inputs``) and records, through ``Store.apply_health``, one
event per change — the new reported state, the event and its pending deliveries in ONE
transaction:

* ``source.failing``: the source has failed for at least its ``report_failing_after``
  (per source, else ``service.report_failing_after``); ``reason`` is the last error in
  plain words ("404 Not Found", "selector `main` matches nothing").
* ``source.recovered``: a reported failure ended (the source succeeded since), or a
  reported quiet source brought something new (both at once: one event).
* ``source.quiet``: a source that works brought nothing new for its ``quiet_after``.

While a state holds nothing is repeated. A failure that ended and began again between two
checks (a flapping source) is seen by its new ``failing_since``: ``source.recovered``,
then ``source.failing`` once the new spell is long enough. The check also sets the
backlog gauges (pending and dead deliveries, failing sources).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from watchtower import metrics
from watchtower.config import Config, NotifyConfig
from watchtower.store import Store
from watchtower.store.health import HealthChange, HealthInput
from watchtower.units import format_duration

log = logging.getLogger(__name__)

FAILING = "source.failing"
RECOVERED = "source.recovered"
QUIET = "source.quiet"
#: The health check runs at least this often, and at least as often as the shortest
#: ``report_failing_after`` / ``quiet_after`` (see :func:`check_interval`).
MAX_CHECK_INTERVAL = timedelta(minutes=1)
MIN_CHECK_INTERVAL = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Limits:
    """How long a source may fail, and stay quiet, before it is reported."""

    failing_after: timedelta
    quiet_after: timedelta


def limits_by_source(config: Config) -> dict[str, Limits]:
    """Each enabled source's limits: its own overrides, else the service's."""
    service = config.service
    return {
        source.label: Limits(
            source.report_failing_after or service.report_failing_after,
            source.quiet_after or service.quiet_after,
        )
        for source in config.feed_and_page_sources()
    }


def check_interval(config: Config) -> timedelta:
    """How often to check: every minute, or half the shortest limit if that is sooner."""
    shortest = min(
        (
            min(limit.failing_after, limit.quiet_after)
            for limit in limits_by_source(config).values()
        ),
        default=MAX_CHECK_INTERVAL,
    )
    return max(MIN_CHECK_INTERVAL, min(MAX_CHECK_INTERVAL, shortest / 2))


def event_channels(notify: NotifyConfig) -> list[str]:
    """The channels every health event goes to: each webhook, each Apprise URL, email."""
    channels = [hook.channel for hook in notify.webhooks]
    channels.extend(entry.channel for entry in notify.apprise)
    if notify.email is not None:
        channels.append("email")
    return channels


def evaluate(row: HealthInput, limits: Limits, now: datetime) -> list[HealthChange]:
    """The events that ``row``'s current state calls for, oldest change first."""
    state = HealthChange(
        source=row.name,
        type="",
        url=row.url,
        reason="",
        since=now,
        failing=row.reported_failing,
        failing_since=row.reported_failing_since,
        failing_reason=None,
        quiet=row.reported_quiet,
        quiet_since=row.reported_quiet_since,
    )
    changes: list[HealthChange] = []
    if state.failing and row.failing_since != state.failing_since:
        since = row.last_success_at or now
        state = replace(
            state,
            type=RECOVERED,
            reason="works again",
            since=since,
            failing=False,
            failing_since=None,
            failing_reason=None,
        )
        changes.append(state)
    if (
        not state.failing
        and row.failing_since is not None
        and now - row.failing_since >= limits.failing_after
    ):
        reason = row.last_error or "unknown error"
        state = replace(
            state,
            type=FAILING,
            reason=reason,
            since=row.failing_since,
            failing=True,
            failing_since=row.failing_since,
            failing_reason=reason,
        )
        changes.append(state)
    for quiet in _quiet_changes(row, state, limits, now):
        if changes and changes[-1].type == RECOVERED and quiet.type == RECOVERED:
            changes[-1] = replace(changes[-1], quiet=False, quiet_since=None)  # one message
        else:
            changes.append(quiet)
    return changes


def _quiet_changes(
    row: HealthInput, state: HealthChange, limits: Limits, now: datetime
) -> list[HealthChange]:
    if state.quiet:
        if state.quiet_since is not None and row.last_new_item_at > state.quiet_since:
            return [
                replace(
                    state,
                    type=RECOVERED,
                    reason="brings new items again",
                    since=row.last_new_item_at,
                    quiet=False,
                    quiet_since=None,
                )
            ]
        return []
    works = row.failing_since is None and row.last_success_at is not None
    if works and now - row.last_new_item_at >= limits.quiet_after:
        reason = f"nothing new for {format_duration(limits.quiet_after)}"
        return [
            replace(
                state,
                type=QUIET,
                reason=reason,
                since=row.last_new_item_at,
                quiet=True,
                quiet_since=row.last_new_item_at,
            )
        ]
    return []


def plan_changes(
    rows: Sequence[HealthInput], limits: dict[str, Limits], now: datetime
) -> list[HealthChange]:
    """Every event due for the configured sources among ``rows``."""
    changes: list[HealthChange] = []
    for row in rows:
        limit = limits.get(row.name)
        if limit is not None:
            changes.extend(evaluate(row, limit, now))
    return changes


async def check_health(store: Store, config: Config, now: datetime) -> list[HealthChange]:
    """Record (and log) the health events now due; returns them. Sets the backlog gauges."""
    limits = limits_by_source(config)
    rows = await store.run(store.health_inputs, list(limits))
    changes = plan_changes(rows, limits, now)
    if changes:
        await store.run(store.apply_health, changes, event_channels(config.notify), now)
    for change in changes:
        _log(change)
    failing = sum(row.failing_since is not None for row in rows)
    counts = await store.run(store.counts)
    metrics.set_backlog(
        counts.get("deliveries_pending", 0), counts.get("deliveries_dead", 0), failing
    )
    return changes


def _log(change: HealthChange) -> None:
    since = change.since.isoformat(timespec="minutes")
    if change.type == FAILING:
        log.error("source %s has been failing since %s: %s", change.source, since, change.reason)
    elif change.type == QUIET:
        log.warning("source %s is quiet: %s (since %s)", change.source, change.reason, since)
    else:
        log.info("source %s recovered: %s", change.source, change.reason)
