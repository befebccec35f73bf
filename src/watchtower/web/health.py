"""From the store's per-source health to the page's :class:`SourceStatus` rows.

:func:`source_status` works on anything shaped like
:class:`watchtower.store.views.SourceHealth` (see :class:`HealthLike`), so an
integrator's ``AlertReader.source_health`` can be one line per source.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from watchtower.web.protocol import HealthState, SourceStatus

__all__ = ["HealthLike", "health_state", "source_status"]


class HealthLike(Protocol):
    """The fields of ``SourceHealth`` this module reads."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def last_polled_at(self) -> datetime | None: ...
    @property
    def last_success_at(self) -> datetime | None: ...
    @property
    def consecutive_failures(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def failing_since(self) -> datetime | None: ...


def health_state(
    health: HealthLike,
    *,
    now: datetime,
    quiet_after: timedelta | None,
    last_new_item: datetime | None,
) -> HealthState:
    """``never-polled``, ``failing`` (last poll failed), ``quiet`` or ``ok``.

    Quiet means the source answers but its newest item (``last_new_item``, or the
    first success when it never brought one) is older than ``quiet_after``.
    """
    if health.last_polled_at is None:
        return "never-polled"
    if health.consecutive_failures > 0:
        return "failing"
    newest = last_new_item or health.last_success_at
    if quiet_after is not None and newest is not None and now - newest > quiet_after:
        return "quiet"
    return "ok"


def source_status(
    health: HealthLike,
    *,
    now: datetime,
    quiet_after: timedelta | None = None,
    last_new_item: datetime | None = None,
) -> SourceStatus:
    """One row of the health page (see :class:`SourceStatus`)."""
    return SourceStatus(
        name=health.name,
        kind=health.kind,
        url=health.url,
        state=health_state(health, now=now, quiet_after=quiet_after, last_new_item=last_new_item),
        last_polled=health.last_polled_at,
        last_success=health.last_success_at,
        last_error=health.last_error,
        failing_since=health.failing_since,
        last_new_item=last_new_item,
    )
