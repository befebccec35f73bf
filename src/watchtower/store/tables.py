"""SQLModel tables of the Watchtower store.

Every timestamp column is :class:`UTCDateTime`: it accepts timezone-aware datetimes
(naive ones are taken to be UTC) and always returns timezone-aware UTC, on SQLite as
on PostgreSQL. JSON columns (``item.explanation``, ``item.diff``, ``alert.explanation``)
hold plain JSON values (``Explanation.to_dict()``, a list of strings).

The schema is created and evolved by the Alembic revisions in ``migrations/versions``;
these classes must stay in step with them (``tests/test_store_engine.py`` checks it).

Tables: ``source``, ``item``, ``story``, ``alert``, ``delivery`` (the outbox),
``digest``, ``snapshot``, ``channel_state``; ``feedback``, ``labelled_item`` and
``store_key`` (see :mod:`watchtower.store.feedback`); source health (``source_health``,
``source_event``, ``event_delivery``, ``service_beat``) is in ``health_tables.py``. The
full-text index (``item_fts`` on SQLite, ``item_search`` on PostgreSQL) is raw DDL of
migration 0003, not a model here (see :mod:`watchtower.store.search`). Delivery statuses
are listed in :data:`DELIVERY_STATUSES`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ConfigDict
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

__all__ = [
    "DELIVERY_STATUSES",
    "NAMING_CONVENTION",
    "Alert",
    "ChannelState",
    "Delivery",
    "Digest",
    "Feedback",
    "Item",
    "LabelledItem",
    "Snapshot",
    "Source",
    "StoreKey",
    "Story",
    "UTCDateTime",
    "utcnow",
]

#: Constraint names are deterministic so Alembic batch migrations on SQLite can find them.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


class Table(SQLModel):
    """Base of the store's tables: only their SQLAlchemy tables are used, so pydantic
    builds no validator for them (``defer_build``; built if a row object is ever
    validated)."""

    model_config = ConfigDict(defer_build=True)  # type: ignore[assignment]


#: ``pending`` → (claimed) ``sending`` → ``sent`` | ``pending`` (retry) | ``dead``;
#: ``cancelled`` is set by the delivery worker for channels that no longer exist.
DELIVERY_STATUSES = ("pending", "sending", "sent", "dead", "cancelled")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back timezone-aware UTC.

    SQLite has no time zones: values are stored as naive UTC text and tagged UTC on the
    way out. PostgreSQL stores ``timestamptz``; results are converted to UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Source(Table, table=True):
    """A configured feed or page, with its fetch state and health."""

    __tablename__ = "source"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_source_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=sa.String)
    kind: str = Field(sa_type=sa.String)  # "feed" | "page"
    url: str = Field(sa_type=sa.String)
    etag: str | None = Field(default=None, sa_type=sa.String)
    last_modified: str | None = Field(default=None, sa_type=sa.String)
    page_hash: str | None = Field(default=None, sa_type=sa.String)
    last_polled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    consecutive_failures: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failure_reported: bool = Field(default=False)
    next_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Story(Table, table=True):
    """One story: items from one or more sources with near-identical text."""

    __tablename__ = "story"
    __table_args__ = (sa.Index("ix_story_last_seen_at", "last_seen_at"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(sa_type=sa.Text)
    url: str | None = Field(default=None, sa_type=sa.String)
    signature: bytes = Field(default=b"", sa_type=sa.LargeBinary)
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    best_score: float = Field(default=0.0)
    item_count: int = Field(default=0)


class Item(Table, table=True):
    """One stored entry of a source; unique per (source_id, guid).

    The guid is stored whole; uniqueness is on ``guid_key``, its SHA-256 hex
    (:func:`watchtower.store.base.key_hash`), which fits any database's index.
    """

    __tablename__ = "item"
    __table_args__ = (
        sa.UniqueConstraint("source_id", "guid_key", name="uq_item_source_guid_key"),
        sa.Index("ix_item_fetched_at", "fetched_at"),
        sa.Index("ix_item_source_fetched", "source_id", "fetched_at"),
        sa.Index("ix_item_story_id", "story_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="source.id")
    guid: str = Field(sa_type=sa.String)
    guid_key: str = Field(sa_type=sa.String(64))
    url: str | None = Field(default=None, sa_type=sa.String)
    title: str = Field(default="", sa_type=sa.Text)
    summary: str = Field(default="", sa_type=sa.Text)
    content: str = Field(default="", sa_type=sa.Text)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    fetched_at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(default="feed", sa_type=sa.String)
    diff: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    score: float = Field(default=0.0)
    explanation: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    signature: bytes = Field(default=b"", sa_type=sa.LargeBinary)
    story_id: int | None = Field(default=None, foreign_key="story.id")


class Alert(Table, table=True):
    """An alert: at most one per story. ``item_id`` is the item that made it fire."""

    __tablename__ = "alert"
    __table_args__ = (
        sa.UniqueConstraint("story_id", name="uq_alert_story_id"),
        sa.Index("ix_alert_created_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    story_id: int = Field(foreign_key="story.id")
    item_id: int = Field(foreign_key="item.id")
    score: float = Field(default=0.0)
    explanation: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Where the alert's document was archived: null, or {"path", "sha256", "fetched_at"}.
    archive: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class Digest(Table, table=True):
    """One digest run; ``period`` (cron fire time ISO UTC, or ``manual:<iso>``) is unique."""

    __tablename__ = "digest"
    __table_args__ = (sa.UniqueConstraint("period", name="uq_digest_period"),)

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(sa_type=sa.String)
    status: str = Field(default="sending", sa_type=sa.String)  # "sending" | "sent"
    message_id: str | None = Field(default=None, sa_type=sa.String)
    alert_count: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Delivery(Table, table=True):
    """The outbox: one row per (alert, channel).

    ``channel`` is ``"webhook:<key>"``, ``"email"`` or ``"digest"``. ``message_id`` is
    ``"msg_"`` + 24 URL-safe random characters, fixed at insert: the webhook-id and the
    seed of the email Message-ID. ``status`` is one of :data:`DELIVERY_STATUSES`.
    """

    __tablename__ = "delivery"
    __table_args__ = (
        sa.UniqueConstraint("alert_id", "channel", name="uq_delivery_alert_id_channel"),
        sa.UniqueConstraint("message_id", name="uq_delivery_message_id"),
        sa.Index("ix_delivery_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id")
    channel: str = Field(sa_type=sa.String)
    message_id: str = Field(sa_type=sa.String)
    status: str = Field(default="pending", sa_type=sa.String)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    digest_id: int | None = Field(default=None, foreign_key="digest.id")


class Snapshot(Table, table=True):
    """The watched text of a page at one time; the newest 10 per source are kept."""

    __tablename__ = "snapshot"
    __table_args__ = (sa.Index("ix_snapshot_source_id_taken_at", "source_id", "taken_at"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="source.id")
    taken_at: datetime = Field(sa_type=UTCDateTime)
    text: str = Field(default="", sa_type=sa.Text)
    hash: str = Field(default="", sa_type=sa.String)


class ChannelState(Table, table=True):
    """A delivery channel switched off, e.g. a webhook that answered 410 Gone."""

    __tablename__ = "channel_state"

    channel: str = Field(primary_key=True, sa_type=sa.String)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str | None = Field(default=None, sa_type=sa.Text)


#: The verdicts an analyst can give an alert.
VERDICTS = ("relevant", "not-relevant")


class Feedback(Table, table=True):
    """The analyst's verdict on one alert; a later verdict replaces the earlier one."""

    __tablename__ = "feedback"

    alert_id: int = Field(primary_key=True, foreign_key="alert.id")
    verdict: str = Field(sa_type=sa.String)  # one of VERDICTS
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LabelledItem(Table, table=True):
    """An item judged before (``feedback import``): label 2 relevant, 1 borderline, 0 not."""

    __tablename__ = "labelled_item"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(default="", sa_type=sa.Text)
    text: str = Field(default="", sa_type=sa.Text)
    url: str | None = Field(default=None, sa_type=sa.String)
    label: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StoreKey(Table, table=True):
    """A key the service keeps across restarts, e.g. ``web`` (signs feedback links)."""

    __tablename__ = "store_key"

    name: str = Field(primary_key=True, sa_type=sa.String)
    value: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
