"""Key hashes: items are unique per (source, SHA-256 of the guid), not the guid itself.

A guid (or, without one, the link) of 100 kB exceeded PostgreSQL's B-tree row limit
and the whole poll failed. The guid stays stored whole; ``item.guid_key`` holds its
SHA-256 hex digest and carries the unique constraint. Existing rows are backfilled.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def _backfill(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("UPDATE item SET guid_key = encode(sha256(convert_to(guid, 'UTF8')), 'hex')")
        )
        return
    last = 0
    while True:
        rows = conn.execute(
            sa.text("SELECT id, guid FROM item WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            return
        conn.execute(
            sa.text("UPDATE item SET guid_key = :k WHERE id = :i"),
            [
                {"k": hashlib.sha256(str(guid).encode("utf-8")).hexdigest(), "i": item_id}
                for item_id, guid in rows
            ],
        )
        last = int(rows[-1][0])


def upgrade() -> None:
    with op.batch_alter_table("item") as batch:
        batch.add_column(sa.Column("guid_key", sa.String(length=64), nullable=True))
    _backfill(op.get_bind())
    with op.batch_alter_table("item") as batch:
        batch.alter_column("guid_key", existing_type=sa.String(length=64), nullable=False)
        batch.drop_constraint("uq_item_source_guid", type_="unique")
        batch.create_unique_constraint("uq_item_source_guid_key", ["source_id", "guid_key"])


def downgrade() -> None:
    with op.batch_alter_table("item") as batch:
        batch.drop_constraint("uq_item_source_guid_key", type_="unique")
        batch.create_unique_constraint("uq_item_source_guid", ["source_id", "guid"])
        batch.drop_column("guid_key")
