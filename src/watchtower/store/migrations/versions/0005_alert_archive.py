"""Alert archive: where each alert's document was preserved (``alert.archive``, JSON).

``null`` until the archive stage has written the alert's WARC record, then
``{"path", "sha256", "fetched_at"}`` (:class:`watchtower.archive.ArchiveRecord`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.add_column(sa.Column("archive", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.drop_column("archive")
