"""Source health in the store: inputs of the health check, reported state, events, outbox.

Contract:

* :meth:`HealthMixin.health_inputs` reads, per source, what the health check needs: the
  source's failure state (``failing_since``, ``last_error``), its last success, the time
  of its newest new item (else when it was first synced) and the state last reported.
* :meth:`HealthMixin.apply_health` writes a batch of :class:`HealthChange` in ONE
  transaction: the new reported state, one ``source_event`` row per change and one
  pending ``event_delivery`` row per channel. A crash leaves either all or nothing.
* The event outbox (:meth:`claim_event_deliveries`, :meth:`finish_event_delivery`)
  has the semantics of the alert outbox: a lease, ``sent`` only after acceptance,
  retries, dead letters (:meth:`requeue_event_deliveries` brings them back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from watchtower.store import tables
from watchtower.store.base import (
    EVENT_DELIVERY,
    ITEM,
    SERVICE_BEAT,
    SOURCE,
    SOURCE_EVENT,
    SOURCE_HEALTH,
    StoreBase,
    clip,
)

__all__ = [
    "EventJob",
    "HealthChange",
    "HealthInput",
    "BeatMixin",
    "HealthMixin",
    "SourceEventView",
    "SourceHealthStatus",
]


@dataclass(frozen=True, slots=True)
class HealthInput:
    """One source as the health check sees it (``reported_*``: the state last reported)."""

    name: str
    url: str
    failing_since: datetime | None
    last_error: str | None
    last_success_at: datetime | None
    last_new_item_at: datetime
    reported_failing: bool
    reported_failing_since: datetime | None
    reported_quiet: bool
    reported_quiet_since: datetime | None


@dataclass(frozen=True, slots=True)
class HealthChange:
    """One event and the reported state after it (written by :meth:`apply_health`)."""

    source: str
    type: str  # "source.failing" | "source.recovered" | "source.quiet"
    url: str
    reason: str
    since: datetime
    failing: bool
    failing_since: datetime | None
    failing_reason: str | None
    quiet: bool
    quiet_since: datetime | None


@dataclass(frozen=True, slots=True)
class SourceEventView:
    """A stored health event (the webhook body's fields)."""

    id: int
    type: str
    source: str
    url: str
    reason: str
    since: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventJob:
    """One claimed ``event_delivery`` row with its event."""

    id: int
    channel: str
    message_id: str
    attempts: int
    event: SourceEventView


@dataclass(frozen=True, slots=True)
class SourceHealthStatus:
    """The reported health of one source, for ``status`` and the review page."""

    source: str
    failing: bool
    failing_since: datetime | None
    reason: str | None
    quiet: bool
    quiet_since: datetime | None
    last_new_item_at: datetime | None


def _event(row: Any) -> SourceEventView:
    return SourceEventView(
        id=row.event_id,
        type=row.type,
        source=row.source,
        url=row.url,
        reason=row.reason,
        since=row.since,
        created_at=row.event_created_at,
    )


_EVENT_COLUMNS = (
    SOURCE_EVENT.c.id.label("event_id"),
    SOURCE_EVENT.c.type,
    SOURCE_EVENT.c.source,
    SOURCE_EVENT.c.url,
    SOURCE_EVENT.c.reason,
    SOURCE_EVENT.c.since,
    SOURCE_EVENT.c.created_at.label("event_created_at"),
)


def _newest_item() -> sa.ScalarSelect[Any]:
    """When the source's newest item arrived (one lookup in ``ix_item_source_fetched``)."""
    return (
        sa.select(sa.func.max(ITEM.c.fetched_at))
        .where(ITEM.c.source_id == SOURCE.c.id)
        .scalar_subquery()
    )


class HealthMixin(StoreBase):
    """The ``source_health``, ``source_event`` and ``event_delivery`` tables."""

    def health_inputs(self, names: Sequence[str] | None = None) -> list[HealthInput]:
        """Every known source (or those in ``names``) with what the health check needs."""
        query = sa.select(
            SOURCE.c.name,
            SOURCE.c.url,
            SOURCE.c.failing_since,
            SOURCE.c.last_error,
            SOURCE.c.last_success_at,
            sa.func.coalesce(_newest_item(), SOURCE.c.created_at).label("last_new"),
            SOURCE_HEALTH.c.failing,
            SOURCE_HEALTH.c.failing_since.label("r_failing_since"),
            SOURCE_HEALTH.c.quiet,
            SOURCE_HEALTH.c.quiet_since,
        ).select_from(SOURCE.outerjoin(SOURCE_HEALTH, SOURCE_HEALTH.c.source == SOURCE.c.name))
        if names is not None:
            query = query.where(SOURCE.c.name.in_(list(names)))
        with self._tx("reading source health inputs") as conn:
            rows = conn.execute(query.order_by(SOURCE.c.name)).all()
        return [
            HealthInput(
                name=row.name,
                url=row.url,
                failing_since=row.failing_since,
                last_error=row.last_error,
                last_success_at=row.last_success_at,
                last_new_item_at=_parse_ts(row.last_new) or tables.utcnow(),
                reported_failing=bool(row.failing),
                reported_failing_since=row.r_failing_since,
                reported_quiet=bool(row.quiet),
                reported_quiet_since=row.quiet_since,
            )
            for row in rows
        ]

    def apply_health(
        self, changes: Sequence[HealthChange], channels: Sequence[str], now: datetime
    ) -> list[int]:
        """Write ``changes`` (state, events, one delivery per channel) in ONE transaction.

        Returns the new event ids, in order.
        """
        from watchtower.store.polls import new_delivery

        ids: list[int] = []
        with self._tx("recording source health events") as conn:
            for change in changes:
                state = {
                    "failing": change.failing,
                    "failing_since": change.failing_since,
                    "failing_reason": clip(change.failing_reason or "") or None,
                    "quiet": change.quiet,
                    "quiet_since": change.quiet_since,
                    "checked_at": now,
                }
                conn.execute(
                    self._insert(SOURCE_HEALTH)
                    .values(source=change.source, **state)
                    .on_conflict_do_update(index_elements=["source"], set_=state)
                )
                event_id = conn.execute(
                    sa.insert(SOURCE_EVENT)
                    .values(
                        source=change.source,
                        type=change.type,
                        url=change.url,
                        reason=clip(change.reason),
                        since=change.since,
                        created_at=now,
                    )
                    .returning(SOURCE_EVENT.c.id)
                ).scalar_one()
                ids.append(int(event_id))
                for channel in channels:
                    conn.execute(
                        sa.insert(EVENT_DELIVERY).values(
                            new_delivery(channel, now, event_id=int(event_id))
                        )
                    )
        return ids

    def health_statuses(self) -> dict[str, SourceHealthStatus]:
        """The reported health of every source, by name (what ``status`` and the page show)."""
        query = sa.select(
            SOURCE.c.name,
            _newest_item().label("newest"),
            SOURCE_HEALTH.c.failing,
            SOURCE_HEALTH.c.failing_since,
            SOURCE_HEALTH.c.failing_reason,
            SOURCE_HEALTH.c.quiet,
            SOURCE_HEALTH.c.quiet_since,
        ).select_from(SOURCE.outerjoin(SOURCE_HEALTH, SOURCE_HEALTH.c.source == SOURCE.c.name))
        with self._tx("reading source health") as conn:
            rows = conn.execute(query).all()
        return {
            row.name: SourceHealthStatus(
                source=row.name,
                failing=bool(row.failing),
                failing_since=row.failing_since,
                reason=row.failing_reason,
                quiet=bool(row.quiet),
                quiet_since=row.quiet_since,
                last_new_item_at=_parse_ts(row.newest),
            )
            for row in rows
        }

    def source_events(self, since: datetime | None = None) -> list[SourceEventView]:
        """Health events created at or after ``since`` (all when ``None``), oldest first."""
        query = sa.select(*_EVENT_COLUMNS).order_by(SOURCE_EVENT.c.id)
        if since is not None:
            query = query.where(SOURCE_EVENT.c.created_at >= since)
        with self._tx("listing source events") as conn:
            return [_event(row) for row in conn.execute(query).all()]

    # -- the event outbox ----------------------------------------------------------------

    @staticmethod
    def _event_due(now: datetime) -> sa.ColumnElement[bool]:
        d = EVENT_DELIVERY.c
        return sa.or_(
            sa.and_(
                d.status == "pending",
                sa.or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
            ),
            sa.and_(d.status == "sending", sa.or_(d.lease_until.is_(None), d.lease_until < now)),
        )

    def claim_event_deliveries(
        self,
        now: datetime,
        channels: Sequence[str],
        *,
        limit: int = 50,
        lease: timedelta = timedelta(minutes=5),
    ) -> list[EventJob]:
        """Claim up to ``limit`` due event deliveries to ``channels`` for ``lease``.

        Same rules as ``claim_deliveries``: due rows become ``sending`` until the lease
        runs out; finish each with :meth:`finish_event_delivery`.
        """
        if limit <= 0 or not channels:
            return []
        condition = sa.and_(self._event_due(now), EVENT_DELIVERY.c.channel.in_(list(channels)))
        pick = (
            sa.select(EVENT_DELIVERY.c.id)
            .where(condition)
            .order_by(EVENT_DELIVERY.c.id)
            .limit(limit)
        )
        if self._dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        with self._tx("claiming event deliveries") as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            conn.execute(
                sa.update(EVENT_DELIVERY)
                .where(EVENT_DELIVERY.c.id.in_(ids), condition)
                .values(status="sending", lease_until=now + lease)
            )
            rows = conn.execute(
                sa.select(
                    EVENT_DELIVERY.c.id,
                    EVENT_DELIVERY.c.channel,
                    EVENT_DELIVERY.c.message_id,
                    EVENT_DELIVERY.c.attempts,
                    *_EVENT_COLUMNS,
                )
                .join(SOURCE_EVENT, SOURCE_EVENT.c.id == EVENT_DELIVERY.c.event_id)
                .where(EVENT_DELIVERY.c.id.in_(ids), EVENT_DELIVERY.c.status == "sending")
                .order_by(EVENT_DELIVERY.c.id)
            ).all()
        return [
            EventJob(row.id, row.channel, row.message_id, row.attempts, _event(row)) for row in rows
        ]

    def finish_event_delivery(
        self,
        delivery_id: int,
        status: str,
        *,
        now: datetime,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """End one attempt: ``sent``, ``pending`` (a retry at ``next_attempt_at``) or ``dead``.

        A failed attempt (``pending`` or ``dead``) adds one to ``attempts``.
        """
        values: dict[str, Any] = {"status": status, "lease_until": None}
        if status == "sent":
            values["sent_at"] = now
        else:
            values["attempts"] = EVENT_DELIVERY.c.attempts + 1
            values["last_error"] = clip(error or "")
            values["next_attempt_at"] = next_attempt_at
        with self._tx("finishing an event delivery") as conn:
            conn.execute(
                sa.update(EVENT_DELIVERY).where(EVENT_DELIVERY.c.id == delivery_id).values(**values)
            )

    def event_delivery_counts(self) -> dict[str, int]:
        """How many event deliveries there are per status."""
        with self._tx("counting event deliveries") as conn:
            rows = conn.execute(
                sa.select(EVENT_DELIVERY.c.status, sa.func.count()).group_by(
                    EVENT_DELIVERY.c.status
                )
            ).all()
        return {str(status): int(count) for status, count in rows}

    def requeue_event_deliveries(self, now: datetime) -> int:
        """Put every dead event delivery back to ``pending``, due ``now``; returns how many."""
        with self._tx("requeueing event deliveries") as conn:
            rows = conn.execute(
                sa.update(EVENT_DELIVERY)
                .where(EVENT_DELIVERY.c.status == "dead")
                .values(status="pending", attempts=0, next_attempt_at=now, lease_until=None)
                .returning(EVENT_DELIVERY.c.id)
            ).all()
        return len(rows)


class BeatMixin(StoreBase):
    """The ``service_beat`` row: is a service running against this store?"""

    def beat(self, host: str, pid: int, now: datetime) -> None:
        """Say that the service ``pid`` on ``host`` is running, as of ``now``."""
        values = {"host": host, "pid": pid, "beat_at": now}
        stmt = self._insert(SERVICE_BEAT).values(id=1, **values)
        with self._tx("recording the service heartbeat") as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=values))

    def end_beat(self, pid: int) -> None:
        """The service ``pid`` stopped: forget its heartbeat."""
        with self._tx("clearing the service heartbeat") as conn:
            conn.execute(sa.delete(SERVICE_BEAT).where(SERVICE_BEAT.c.pid == pid))

    def last_beat(self) -> tuple[str, int, datetime] | None:
        """``(host, pid, when)`` of the last heartbeat, or ``None``."""
        with self._tx("reading the service heartbeat") as conn:
            row = conn.execute(sa.select(SERVICE_BEAT)).first()
        return None if row is None else (row.host, int(row.pid), row.beat_at)


def _parse_ts(value: object) -> datetime | None:
    """A timestamp from an aggregate (SQLite returns text for ``max``/``coalesce``)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
