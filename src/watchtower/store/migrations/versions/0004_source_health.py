"""Source health: the reported state of each source, its events and their outbox; the
running service's heartbeat (so the CLI can tell whether a service will send what it
queues).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "source_health",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("failing", sa.Boolean(), nullable=False),
        _ts("failing_since"),
        sa.Column("failing_reason", sa.Text(), nullable=True),
        sa.Column("quiet", sa.Boolean(), nullable=False),
        _ts("quiet_since"),
        _ts("checked_at"),
        sa.PrimaryKeyConstraint("source", name="pk_source_health"),
    )
    op.create_table(
        "source_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _ts("since", nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_source_event"),
    )
    op.create_index("ix_source_event_created_at", "source_event", ["created_at"])
    op.create_table(
        "event_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        _ts("lease_until"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("sent_at"),
        sa.ForeignKeyConstraint(
            ["event_id"], ["source_event.id"], name="fk_event_delivery_event_id_source_event"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_event_delivery"),
        sa.UniqueConstraint("event_id", "channel", name="uq_event_delivery_event_id_channel"),
        sa.UniqueConstraint("message_id", name="uq_event_delivery_message_id"),
    )
    op.create_index(
        "ix_event_delivery_status_next_attempt_at",
        "event_delivery",
        ["status", "next_attempt_at"],
    )
    op.create_table(
        "service_beat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        _ts("beat_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_service_beat"),
    )


def downgrade() -> None:
    op.drop_table("service_beat")
    op.drop_index("ix_event_delivery_status_next_attempt_at", table_name="event_delivery")
    op.drop_table("event_delivery")
    op.drop_index("ix_source_event_created_at", table_name="source_event")
    op.drop_table("source_event")
    op.drop_table("source_health")
