"""Index ``item (source_id, fetched_at)``: a source's newest item in one index lookup.

The health check asks, for every source, when its newest item arrived; without this
index that is a scan of every stored item, each health check.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_item_source_fetched", "item", ["source_id", "fetched_at"])


def downgrade() -> None:
    op.drop_index("ix_item_source_fetched", table_name="item")
