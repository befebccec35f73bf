"""SQLModel tables of source health (migration ``0004``).

* ``source_health``: per source name, the state last *reported* — failing (since when,
  why) and quiet (since when). Events are derived by comparing it with the source's
  current state, so each change of state gives one event.
* ``source_event``: one row per health event (``source.failing``, ``source.recovered``,
  ``source.quiet``) with the fields of the webhook body.
* ``event_delivery``: the outbox of health events, one row per (event, channel), with
  the same statuses and lease as ``delivery`` (:data:`tables.DELIVERY_STATUSES`).
* ``service_beat``: one row (id 1) that a running service refreshes every few seconds.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field

from watchtower.store.tables import Table, UTCDateTime, utcnow

__all__ = ["EventDelivery", "ServiceBeat", "SourceEvent", "SourceHealthState"]


class SourceHealthState(Table, table=True):
    """The health state last reported for one source (by name)."""

    __tablename__ = "source_health"

    source: str = Field(primary_key=True, sa_type=sa.String)
    failing: bool = Field(default=False)
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failing_reason: str | None = Field(default=None, sa_type=sa.Text)
    quiet: bool = Field(default=False)
    quiet_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SourceEvent(Table, table=True):
    """One source health event; ``type`` is ``source.failing|recovered|quiet``."""

    __tablename__ = "source_event"
    __table_args__ = (sa.Index("ix_source_event_created_at", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(sa_type=sa.String)
    type: str = Field(sa_type=sa.String)
    url: str = Field(sa_type=sa.String)
    reason: str = Field(sa_type=sa.Text)
    since: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EventDelivery(Table, table=True):
    """The outbox of health events: one row per (event, channel)."""

    __tablename__ = "event_delivery"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "channel", name="uq_event_delivery_event_id_channel"),
        sa.UniqueConstraint("message_id", name="uq_event_delivery_message_id"),
        sa.Index("ix_event_delivery_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="source_event.id")
    channel: str = Field(sa_type=sa.String)
    message_id: str = Field(sa_type=sa.String)
    status: str = Field(default="pending", sa_type=sa.String)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ServiceBeat(Table, table=True):
    """The running service's heartbeat: which process, and when it last said so."""

    __tablename__ = "service_beat"

    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(sa_type=sa.String)
    pid: int = Field(default=0)
    beat_at: datetime = Field(sa_type=UTCDateTime)
