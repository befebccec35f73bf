"""Source health: report each source failing longer than a bound, once per failure spell.

:func:`check_health` reads every source's health from the store; a source failing for at
least ``report_failing_after`` that was not reported yet is logged at ERROR once (the
store remembers it was reported until the source succeeds again). It also sets the
backlog gauges (pending and dead deliveries, failing sources).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from watchtower import metrics
from watchtower.store import Store

log = logging.getLogger(__name__)


async def check_health(store: Store, report_failing_after: timedelta, now: datetime) -> int:
    """Report newly long-failing sources once; returns how many sources are failing."""
    health = await store.run(store.source_health, now)
    failing = 0
    for row in health:
        if row.failing_since is None:
            continue
        failing += 1
        if row.failure_reported or now - row.failing_since < report_failing_after:
            continue
        log.error(
            "source %s has been failing since %s (%d failures): %s",
            row.name,
            row.failing_since.isoformat(timespec="minutes"),
            row.consecutive_failures,
            row.last_error,
        )
        await store.run(store.mark_failure_reported, row.name)
    counts = await store.run(store.counts)
    metrics.set_backlog(
        counts.get("deliveries_pending", 0), counts.get("deliveries_dead", 0), failing
    )
    return failing
