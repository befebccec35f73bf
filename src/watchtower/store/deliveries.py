"""Deliveries (the outbox) and channel state: claim with a lease, finish, retry, disable."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from watchtower.errors import StoreError
from watchtower.store import tables
from watchtower.store.base import (
    CHANNEL_STATE,
    DELIVERY,
    StoreBase,
    clip,
)
from watchtower.store.views import DeliveryJob


def _job(row: Any) -> DeliveryJob:
    return DeliveryJob(
        id=row.id,
        alert_id=row.alert_id,
        channel=row.channel,
        message_id=row.message_id,
        attempts=row.attempts,
        created_at=row.created_at,
    )


_JOB_COLUMNS = (
    DELIVERY.c.id,
    DELIVERY.c.alert_id,
    DELIVERY.c.channel,
    DELIVERY.c.message_id,
    DELIVERY.c.attempts,
    DELIVERY.c.created_at,
)


class DeliveriesMixin(StoreBase):
    """The ``delivery`` and ``channel_state`` tables."""

    @staticmethod
    def _due(now: datetime) -> sa.ColumnElement[bool]:
        return sa.or_(
            sa.and_(
                DELIVERY.c.status == "pending",
                sa.or_(DELIVERY.c.next_attempt_at.is_(None), DELIVERY.c.next_attempt_at <= now),
            ),
            sa.and_(
                DELIVERY.c.status == "sending",
                sa.or_(DELIVERY.c.lease_until.is_(None), DELIVERY.c.lease_until < now),
            ),
        )

    def claim_deliveries(
        self,
        now: datetime,
        *,
        limit: int = 50,
        lease: timedelta = timedelta(minutes=5),
        channel_prefix: str | None = None,
    ) -> list[DeliveryJob]:
        """Claim up to ``limit`` due deliveries, oldest due first, for ``lease``.

        Due: ``pending`` with ``next_attempt_at <= now``, or ``sending`` whose lease ran
        out. Claimed rows become ``sending`` with ``lease_until = now + lease``; finish
        each with :meth:`mark_sent`, :meth:`mark_retry` or :meth:`mark_dead`. Concurrent
        claimers (threads, processes) never receive the same row while its lease runs.
        ``channel_prefix`` (e.g. ``"webhook:"``) restricts the channels claimed.
        """
        if limit <= 0:
            return []
        condition = self._due(now)
        if channel_prefix:
            condition = sa.and_(
                condition, DELIVERY.c.channel.startswith(channel_prefix, autoescape=True)
            )
        pick = (
            sa.select(DELIVERY.c.id)
            .where(condition)
            .order_by(DELIVERY.c.next_attempt_at, DELIVERY.c.id)
            .limit(limit)
        )
        if self._dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        with self._tx("claiming deliveries") as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            rows = conn.execute(
                sa.update(DELIVERY)
                .where(DELIVERY.c.id.in_(ids), condition)
                .values(status="sending", lease_until=now + lease)
                .returning(*_JOB_COLUMNS)
            ).all()
        order = {delivery_id: n for n, delivery_id in enumerate(ids)}
        return sorted((_job(row) for row in rows), key=lambda job: order[job.id])

    def _finish(self, action: str, delivery_id: int, **values: Any) -> None:
        with self._tx(action) as conn:
            found = conn.execute(
                sa.update(DELIVERY)
                .where(DELIVERY.c.id == delivery_id)
                .values(**values)
                .returning(DELIVERY.c.id)
            ).first()
        if found is None:
            raise StoreError(f"store: no delivery {delivery_id}")

    def mark_sent(self, delivery_id: int, now: datetime) -> None:
        """The receiver accepted the delivery (2xx, SMTP 250): status ``sent``."""
        self._finish(
            "marking a delivery sent", delivery_id, status="sent", sent_at=now, lease_until=None
        )

    def mark_retry(self, delivery_id: int, error: str, next_attempt_at: datetime) -> None:
        """A failed attempt: attempts + 1, back to ``pending`` due at ``next_attempt_at``."""
        self._finish(
            "scheduling a retry",
            delivery_id,
            status="pending",
            attempts=DELIVERY.c.attempts + 1,
            last_error=clip(error),
            next_attempt_at=next_attempt_at,
            lease_until=None,
        )

    def mark_dead(self, delivery_id: int, error: str) -> None:
        """A final failure: attempts + 1, status ``dead`` (see :meth:`requeue`)."""
        self._finish(
            "marking a delivery dead",
            delivery_id,
            status="dead",
            attempts=DELIVERY.c.attempts + 1,
            last_error=clip(error),
            lease_until=None,
        )

    def requeue(self, delivery_id: int | None, *, now: datetime | None = None) -> int:
        """Put dead deliveries back to ``pending``, due ``now`` (default: the current time),
        with attempts reset to 0. ``None`` requeues every dead delivery. Returns the count.
        """
        when = now or tables.utcnow()
        stmt = (
            sa.update(DELIVERY)
            .where(DELIVERY.c.status == "dead")
            .values(status="pending", attempts=0, next_attempt_at=when, lease_until=None)
            .returning(DELIVERY.c.id)
        )
        if delivery_id is not None:
            stmt = stmt.where(DELIVERY.c.id == delivery_id)
        with self._tx("requeueing deliveries") as conn:
            return len(conn.execute(stmt).all())

    def dead_deliveries(self) -> list[tuple[DeliveryJob, str]]:
        """Every dead delivery with its last error, oldest first."""
        with self._tx("listing dead deliveries") as conn:
            rows = conn.execute(
                sa.select(*_JOB_COLUMNS, DELIVERY.c.last_error)
                .where(DELIVERY.c.status == "dead")
                .order_by(DELIVERY.c.id)
            ).all()
        return [(_job(row), row.last_error or "") for row in rows]

    def disable_channel(self, channel: str, reason: str, now: datetime) -> None:
        """Switch ``channel`` off (e.g. a webhook answered 410 Gone)."""
        stmt = self._insert(CHANNEL_STATE).values(
            channel=channel, disabled_at=now, reason=clip(reason)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["channel"],
            set_={"disabled_at": now, "reason": clip(reason)},
        )
        with self._tx("disabling a channel") as conn:
            conn.execute(stmt)

    def enable_channel(self, channel: str) -> bool:
        """Switch ``channel`` on again; returns whether it was disabled."""
        with self._tx("enabling a channel") as conn:
            gone = conn.execute(
                sa.delete(CHANNEL_STATE)
                .where(CHANNEL_STATE.c.channel == channel)
                .returning(CHANNEL_STATE.c.channel)
            ).first()
        return gone is not None

    def disabled_channels(self) -> dict[str, str]:
        """Disabled channels and why."""
        with self._tx("listing disabled channels") as conn:
            rows = conn.execute(
                sa.select(CHANNEL_STATE.c.channel, CHANNEL_STATE.c.reason).where(
                    CHANNEL_STATE.c.disabled_at.is_not(None)
                )
            ).all()
        return {row.channel: row.reason or "" for row in rows}

    def release_deliveries(self, ids: Sequence[int]) -> None:
        """Put claimed (``sending``) deliveries among ``ids`` back to ``pending``."""
        with self._tx("releasing deliveries") as conn:
            conn.execute(
                sa.update(DELIVERY)
                .where(DELIVERY.c.id.in_(list(ids)), DELIVERY.c.status == "sending")
                .values(status="pending", lease_until=None)
            )

    def release_abandoned(self) -> int:
        """Put every ``sending`` delivery back to ``pending`` at once; returns how many.

        Only for a process holding the store's instance lock (:mod:`watchtower.store.lock`)
        at start: no other Watchtower runs, so each such row was leased by a process that
        died (SIGKILL, power loss) and would otherwise wait out its lease. Rows inside a
        digest (``digest_id`` set) are left to ``resume_digests``. Cooperating
        instances (leased polls) would release only rows whose owner is gone instead.
        """
        with self._tx("releasing abandoned deliveries") as conn:
            result = conn.execute(
                sa.update(DELIVERY)
                .where(DELIVERY.c.status == "sending", DELIVERY.c.digest_id.is_(None))
                .values(status="pending", lease_until=None)
            )
        return int(result.rowcount or 0)

    def cancel_pending(self, channel: str, reason: str) -> int:
        """Cancel every pending delivery to ``channel`` with ``reason``; returns how many."""
        with self._tx("cancelling deliveries") as conn:
            result = conn.execute(
                sa.update(DELIVERY)
                .where(DELIVERY.c.channel == channel, DELIVERY.c.status == "pending")
                .values(status="cancelled", last_error=clip(reason))
            )
            return int(result.rowcount or 0)

    def pending_by_channel(self) -> dict[str, int]:
        """How many deliveries are pending, per channel."""
        with self._tx("counting pending deliveries") as conn:
            rows = conn.execute(
                sa.select(DELIVERY.c.channel, sa.func.count())
                .where(DELIVERY.c.status == "pending")
                .group_by(DELIVERY.c.channel)
            ).all()
        return {str(channel): int(count) for channel, count in rows}
