"""Feedback on alerts, labelled items to learn from, kept keys, and full-text search.

Tables ``feedback`` (one verdict per alert), ``labelled_item`` (``feedback import``) and
``store_key`` (the web signing key when no ``web.secret`` is configured). The full-text
index over every item: SQLite FTS5 ``item_fts`` (contentless, rowid = item id) or
PostgreSQL ``item_search`` (``tsvector`` with a GIN index); existing items are indexed
here (see :mod:`watchtower.store.search`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from watchtower.store.search import index_items

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tables() -> None:
    op.create_table(
        "feedback",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], name="fk_feedback_alert_id_alert"),
        sa.PrimaryKeyConstraint("alert_id", name="pk_feedback"),
    )
    op.create_table(
        "labelled_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("label", sa.Integer(), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_labelled_item"),
    )
    op.create_table(
        "store_key",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_store_key"),
    )


def _search_index() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE item_search (item_id INTEGER PRIMARY KEY "
            "REFERENCES item (id) ON DELETE CASCADE, body tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX ix_item_search_body ON item_search USING gin (body)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE item_fts USING fts5(body, content='', "
            "tokenize='unicode61 remove_diacritics 2')"
        )
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, title, summary, content FROM item WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            break
        index_items(bind, [(int(r[0]), r[1] or "", r[2] or "", r[3] or "") for r in rows])
        last = int(rows[-1][0])


def upgrade() -> None:
    _tables()
    _search_index()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TABLE item_search")
    else:
        op.execute("DROP TABLE item_fts")
    op.drop_table("store_key")
    op.drop_table("labelled_item")
    op.drop_table("feedback")
