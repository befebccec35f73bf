"""The full-text index over every stored item: SQLite FTS5 or PostgreSQL ``tsvector``.

Both sides store :func:`watchtower.web.search.index_text` of an item's title, summary
and content (CJK runs as character bigrams, so Korean with particles and Chinese
without spaces are found) and query with the safe expressions of that module:

* SQLite: the contentless FTS5 table ``item_fts(body)``, ``rowid`` = ``item.id``,
  ``unicode61`` tokenizer; queried with ``MATCH`` :func:`~watchtower.web.search.fts5_query`.
* PostgreSQL: the table ``item_search(item_id, body tsvector)`` with a GIN index,
  ``to_tsvector('simple', …)``; queried with ``websearch_to_tsquery('simple', …)`` of
  :func:`~watchtower.web.search.websearch_query`, which never raises.

Both are created by migration ``0003`` (raw DDL, so they are not SQLModel tables:
:func:`is_search_structure` names them for schema comparisons). :func:`index_items`
runs on the caller's connection, so a poll's new items are indexed in its own write
transaction (the store queues them and indexes a transaction's rows at its end).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watchtower.web.search import fts5_query, index_text, websearch_query

__all__ = [
    "ItemText",
    "body_of",
    "index_items",
    "new_item_texts",
    "is_search_structure",
    "matching_item_ids",
]

_SQLITE_INSERT = sa.text("INSERT INTO item_fts(rowid, body) VALUES (:id, :body)")
_PG_INSERT = sa.text(
    "INSERT INTO item_search (item_id, body) VALUES (:id, to_tsvector('simple', :body)) "
    "ON CONFLICT (item_id) DO NOTHING"
)
#: One item as the index takes it: ``(item_id, title, summary, content)``.
ItemText = tuple[int, str, str, str]
#: Longest text indexed per item (characters, before bigrams): bounds the index's size.
MAX_INDEXED_CHARS = 100_000


def is_search_structure(name: str | None) -> bool:
    """True for the full-text index's own tables (FTS5 shadow tables included)."""
    return bool(name) and (str(name).startswith("item_fts") or name == "item_search")


def body_of(title: str, summary: str, content: str) -> str:
    """The text indexed for one item: title, summary and content, bigrammed."""
    text = "\n".join(part for part in (title, summary, content) if part)
    return index_text(text[:MAX_INDEXED_CHARS])


def index_items(conn: Connection, rows: Iterable[ItemText]) -> None:
    """Index ``(item_id, title, summary, content)`` rows on ``conn`` (its transaction)."""
    params = [{"id": i, "body": body_of(t, s, c)} for i, t, s, c in rows]
    if not params:
        return
    stmt = _PG_INSERT if conn.dialect.name == "postgresql" else _SQLITE_INSERT
    conn.execute(stmt, params)


def new_item_texts(rows: Sequence[Mapping[str, Any]], ids: Mapping[str, int]) -> list[ItemText]:
    """What :func:`index_items` takes for the item rows of a poll that were inserted
    (``ids``: ``guid_key`` → new item id)."""
    return [
        (ids[row["guid_key"]], row["title"], row["summary"], row["content"])
        for row in rows
        if row["guid_key"] in ids
    ]


def matching_item_ids(conn: Connection, q: str | None, limit: int) -> Sequence[int] | None:
    """Ids of items matching the user's words ``q`` (at most ``limit``, best first).

    ``None`` when ``q`` holds nothing to search for (the caller lists everything).
    """
    if conn.dialect.name == "postgresql":
        query = websearch_query(q)
        if query is None:
            return None
        sql = sa.text(
            "SELECT item_id FROM item_search "
            "WHERE body @@ websearch_to_tsquery('simple', :q) LIMIT :n"
        )
    else:
        query = fts5_query(q)
        if query is None:
            return None
        sql = sa.text("SELECT rowid FROM item_fts WHERE item_fts MATCH :q ORDER BY rank LIMIT :n")
    return [int(row[0]) for row in conn.execute(sql, {"q": query, "n": limit})]
