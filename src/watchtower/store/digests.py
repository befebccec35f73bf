"""Digests: one row per period, and the digest deliveries it carries.

The three steps of a digest (see :mod:`watchtower.notify.digest`) are one transaction
each here: :meth:`DigestsMixin.begin_digest` finds or creates the period's row and moves
every pending ``digest`` delivery into it; :meth:`DigestsMixin.finish_digest` marks the
digest and its deliveries sent; :meth:`DigestsMixin.note_digest_failure` counts a failed
attempt on its deliveries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from watchtower.notify.channels import DIGEST_CHANNEL
from watchtower.store import tables
from watchtower.store.base import ALERT, DELIVERY, StoreBase
from watchtower.store.views import DigestRow

DIGEST = SQLModel.metadata.tables[tables.Digest.__tablename__]


def _row(conn: Connection, digest: Any) -> DigestRow:
    alert_ids = tuple(
        int(a)
        for a in conn.execute(
            sa.select(DELIVERY.c.alert_id).where(DELIVERY.c.digest_id == digest.id)
        ).scalars()
    )
    return DigestRow(
        int(digest.id), digest.period, digest.message_id or f"digest_{digest.id}", alert_ids
    )


_COLUMNS = (DIGEST.c.id, DIGEST.c.period, DIGEST.c.message_id)


class DigestsMixin(StoreBase):
    """The ``digest`` table and the ``digest`` channel's deliveries."""

    def unfinished_digests(self, *, exclude: str | None = None) -> list[DigestRow]:
        """Digests still ``sending`` (a crash or a mail outage), oldest first."""
        with self._tx("reading unsent digests") as conn:
            rows = conn.execute(
                sa.select(*_COLUMNS).where(DIGEST.c.status == "sending").order_by(DIGEST.c.id)
            ).all()
            return [_row(conn, r) for r in rows if r.period != exclude]

    def begin_digest(
        self, period: str, now: datetime, *, send_empty: bool, message_id: str
    ) -> tuple[DigestRow | None, str]:
        """Find or create the digest of ``period``; returns (row or None, why).

        Why is ``"already sent for this period"`` or ``"nothing new"`` (row None),
        ``"resuming"`` (an unsent digest of this period) or ``"new"``: a digest row with
        ``message_id`` now holds every pending ``digest`` delivery (``sending``).
        """
        with self._tx("starting a digest") as conn:
            existing = conn.execute(
                sa.select(*_COLUMNS, DIGEST.c.status).where(DIGEST.c.period == period)
            ).first()
            if existing is not None:
                if existing.status == "sent":
                    return None, "already sent for this period"
                return _row(conn, existing), "resuming"
            pending = list(
                conn.execute(
                    sa.select(DELIVERY.c.id).where(
                        DELIVERY.c.channel == DIGEST_CHANNEL,
                        DELIVERY.c.status == "pending",
                        DELIVERY.c.digest_id.is_(None),
                    )
                ).scalars()
            )
            if not pending and not send_empty:
                return None, "nothing new"
            digest_id = conn.execute(
                sa.insert(DIGEST)
                .values(
                    period=period,
                    status="sending",
                    message_id=message_id,
                    alert_count=len(pending),
                    created_at=now,
                )
                .returning(DIGEST.c.id)
            ).scalar_one()
            if pending:
                conn.execute(
                    sa.update(DELIVERY)
                    .where(DELIVERY.c.id.in_(pending), DELIVERY.c.status == "pending")
                    .values(status="sending", digest_id=digest_id, lease_until=None)
                )
            row = conn.execute(sa.select(*_COLUMNS).where(DIGEST.c.id == digest_id)).one()
            return _row(conn, row), "new"

    def finish_digest(self, digest_id: int, now: datetime) -> None:
        """The digest and all its deliveries are sent, in one transaction."""
        with self._tx("finishing a digest") as conn:
            conn.execute(
                sa.update(DIGEST).where(DIGEST.c.id == digest_id).values(status="sent", sent_at=now)
            )
            conn.execute(
                sa.update(DELIVERY)
                .where(DELIVERY.c.digest_id == digest_id)
                .values(status="sent", sent_at=now, lease_until=None, last_error=None)
            )

    def note_digest_failure(self, digest_id: int, error: str) -> None:
        """Count one failed attempt, with its reason, on the digest's deliveries."""
        with self._tx("noting a digest failure") as conn:
            conn.execute(
                sa.update(DELIVERY)
                .where(DELIVERY.c.digest_id == digest_id)
                .values(attempts=DELIVERY.c.attempts + 1, last_error=error[:500])
            )

    def pending_digest_alert_ids(self) -> list[int]:
        """Alerts the next digest would carry: pending ones and those of unsent digests."""
        with self._tx("reading the digest backlog") as conn:
            open_digests = sa.select(DIGEST.c.id).where(DIGEST.c.status == "sending")
            return [
                int(a)
                for a in conn.execute(
                    sa.select(DELIVERY.c.alert_id).where(
                        DELIVERY.c.channel == DIGEST_CHANNEL,
                        sa.or_(
                            sa.and_(DELIVERY.c.status == "pending", DELIVERY.c.digest_id.is_(None)),
                            sa.and_(
                                DELIVERY.c.status == "sending",
                                DELIVERY.c.digest_id.in_(open_digests),
                            ),
                        ),
                    )
                ).scalars()
            ]

    def alerts_missing_digest(self, since: datetime) -> list[int]:
        """Alerts created at or after ``since`` that have no ``digest`` delivery at all
        (stored while no email digest was configured), oldest first."""
        has_digest = sa.select(DELIVERY.c.alert_id).where(DELIVERY.c.channel == DIGEST_CHANNEL)
        with self._tx("finding alerts missing from digests") as conn:
            return [
                int(a)
                for a in conn.execute(
                    sa.select(ALERT.c.id)
                    .where(ALERT.c.created_at >= since, ALERT.c.id.not_in(has_digest))
                    .order_by(ALERT.c.id)
                ).scalars()
            ]

    def add_digest_deliveries(self, alert_ids: Sequence[int], now: datetime) -> int:
        """Give each alert in ``alert_ids`` a pending ``digest`` delivery (if it has none)."""
        from watchtower.store.polls import new_delivery

        added = 0
        with self._tx("adding digest deliveries") as conn:
            for alert_id in alert_ids:
                stmt = (
                    self._insert(DELIVERY)
                    .values(new_delivery(DIGEST_CHANNEL, now, alert_id=alert_id))
                    .on_conflict_do_nothing(index_elements=["alert_id", "channel"])
                    .returning(DELIVERY.c.id)
                )
                added += conn.execute(stmt).first() is not None
        return added

    def last_digest_sent_at(self) -> datetime | None:
        """When the newest sent digest went out, or ``None`` if none ever did."""
        with self._tx("reading the last digest") as conn:
            value = conn.execute(
                sa.select(DIGEST.c.sent_at)
                .where(DIGEST.c.status == "sent")
                .order_by(DIGEST.c.sent_at.desc())
                .limit(1)
            ).scalar_one_or_none()
        return value if isinstance(value, datetime) or value is None else None
