"""Initial schema: sources, items, stories, alerts, the delivery outbox, digests,
page snapshots and channel state.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("etag", sa.String(), nullable=True),
        sa.Column("last_modified", sa.String(), nullable=True),
        sa.Column("page_hash", sa.String(), nullable=True),
        _ts("last_polled_at"),
        _ts("last_success_at"),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("failing_since"),
        sa.Column("failure_reported", sa.Boolean(), nullable=False),
        _ts("next_due_at"),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_source"),
        sa.UniqueConstraint("name", name="uq_source_name"),
    )
    op.create_table(
        "story",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        _ts("first_seen_at", nullable=False),
        _ts("last_seen_at", nullable=False),
        sa.Column("best_score", sa.Float(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_story"),
    )
    op.create_index("ix_story_last_seen_at", "story", ["last_seen_at"])
    op.create_table(
        "item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("guid", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        _ts("published_at"),
        _ts("fetched_at", nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["source_id"], ["source.id"], name="fk_item_source_id_source"),
        sa.ForeignKeyConstraint(["story_id"], ["story.id"], name="fk_item_story_id_story"),
        sa.PrimaryKeyConstraint("id", name="pk_item"),
        sa.UniqueConstraint("source_id", "guid", name="uq_item_source_guid"),
    )
    op.create_index("ix_item_fetched_at", "item", ["fetched_at"])
    op.create_index("ix_item_story_id", "item", ["story_id"])
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        _ts("created_at", nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"], name="fk_alert_item_id_item"),
        sa.ForeignKeyConstraint(["story_id"], ["story.id"], name="fk_alert_story_id_story"),
        sa.PrimaryKeyConstraint("id", name="pk_alert"),
        sa.UniqueConstraint("story_id", name="uq_alert_story_id"),
    )
    op.create_index("ix_alert_created_at", "alert", ["created_at"])
    op.create_table(
        "digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("sent_at"),
        sa.PrimaryKeyConstraint("id", name="pk_digest"),
        sa.UniqueConstraint("period", name="uq_digest_period"),
    )
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        _ts("lease_until"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("sent_at"),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], name="fk_delivery_alert_id_alert"),
        sa.ForeignKeyConstraint(["digest_id"], ["digest.id"], name="fk_delivery_digest_id_digest"),
        sa.PrimaryKeyConstraint("id", name="pk_delivery"),
        sa.UniqueConstraint("alert_id", "channel", name="uq_delivery_alert_id_channel"),
        sa.UniqueConstraint("message_id", name="uq_delivery_message_id"),
    )
    op.create_index("ix_delivery_status_next_attempt_at", "delivery", ["status", "next_attempt_at"])
    op.create_table(
        "snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        _ts("taken_at", nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["source.id"], name="fk_snapshot_source_id_source"),
        sa.PrimaryKeyConstraint("id", name="pk_snapshot"),
    )
    op.create_index("ix_snapshot_source_id_taken_at", "snapshot", ["source_id", "taken_at"])
    op.create_table(
        "channel_state",
        sa.Column("channel", sa.String(), nullable=False),
        _ts("disabled_at"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("channel", name="pk_channel_state"),
    )


def downgrade() -> None:
    op.drop_table("channel_state")
    op.drop_index("ix_snapshot_source_id_taken_at", table_name="snapshot")
    op.drop_table("snapshot")
    op.drop_index("ix_delivery_status_next_attempt_at", table_name="delivery")
    op.drop_table("delivery")
    op.drop_table("digest")
    op.drop_index("ix_alert_created_at", table_name="alert")
    op.drop_table("alert")
    op.drop_index("ix_item_story_id", table_name="item")
    op.drop_index("ix_item_fetched_at", table_name="item")
    op.drop_table("item")
    op.drop_index("ix_story_last_seen_at", table_name="story")
    op.drop_table("story")
    op.drop_table("source")
