"""The statements every poll's write runs, built once per database dialect.

Building a SQLAlchemy statement (coercing its columns and values into clauses) and
computing its cache key cost 20–90 µs each, and a poll's write runs about ten of them:
built afresh for every poll, that was a tenth of the store thread in the first cycle.
Built once here with bound parameters, a statement keeps its memoized cache key and
only its parameters change. Each function returns the same statement object every
time; the parameter names are given in its docstring.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from watchtower.store.base import ALERT, DELIVERY, ITEM, SOURCE, STORY, dialect_insert


@functools.cache
def stored_guid_keys() -> sa.Select[Any]:
    """The ``guid_key`` of items of source ``source_id`` among ``keys`` (a list)."""
    return sa.select(ITEM.c.guid_key).where(
        ITEM.c.source_id == sa.bindparam("source_id"),
        ITEM.c.guid_key.in_(sa.bindparam("keys", expanding=True)),
    )


@functools.cache
def recent_stories() -> sa.Select[Any]:
    """Stories among ``ids`` (a list) last seen at ``since`` or later."""
    return sa.select(
        STORY.c.id,
        STORY.c.signature,
        STORY.c.title,
        STORY.c.url,
        STORY.c.best_score,
        STORY.c.last_seen_at,
    ).where(
        STORY.c.id.in_(sa.bindparam("ids", expanding=True)),
        STORY.c.last_seen_at >= sa.bindparam("since"),
    )


@functools.cache
def alerted_stories() -> sa.Select[Any]:
    """The ``story_id`` of alerts among ``ids`` (a list)."""
    return sa.select(ALERT.c.story_id).where(
        ALERT.c.story_id.in_(sa.bindparam("ids", expanding=True))
    )


@functools.cache
def insert_stories(dialect: str) -> Any:
    """Story rows (executemany), returning their ids: in parameter order where the
    database can say so; on SQLite the caller sorts them (see ``_insert_returning_ids``)."""
    if dialect == "sqlite":
        return sa.insert(STORY).returning(STORY.c.id)
    return sa.insert(STORY).returning(STORY.c.id, sort_by_parameter_order=True)


def encoded_json(dialect: str) -> Any:
    """A JSON column's value from the parameter ``explanation_text``, JSON text encoded
    already (:meth:`~watchtower.models.ScoredEntry.explanation_text`): stored as it is,
    not encoded again. SQLite keeps JSON as text; PostgreSQL casts the text."""
    text = sa.bindparam("explanation_text", type_=sa.Text)
    return sa.cast(text, sa.JSON) if dialect == "postgresql" else text


@functools.cache
def insert_items(dialect: str) -> Any:
    """Item rows (executemany), skipping a (source, guid) stored already; returns the
    ``id`` and ``guid_key`` of those inserted. The explanation is ``explanation_text``
    (:func:`encoded_json`)."""
    return (
        dialect_insert(dialect, ITEM)
        .values(explanation=encoded_json(dialect))
        .on_conflict_do_nothing(index_elements=["source_id", "guid_key"])
        .returning(ITEM.c.id, ITEM.c.guid_key)
    )


@functools.cache
def grow_stories() -> sa.Update:
    """Story ``story_id`` gained ``added`` items: its count, ``seen`` and ``best``."""
    return (
        sa.update(STORY)
        .where(STORY.c.id == sa.bindparam("story_id"))
        .values(
            item_count=STORY.c.item_count + sa.bindparam("added"),
            last_seen_at=sa.bindparam("seen"),
            best_score=sa.bindparam("best"),
        )
    )


@functools.cache
def insert_alerts(dialect: str) -> Any:
    """Alert rows (executemany), skipping a story that has one; returns ``id`` and
    ``story_id`` of those inserted. The explanation is ``explanation_text``."""
    return (
        dialect_insert(dialect, ALERT)
        .values(explanation=encoded_json(dialect))
        .on_conflict_do_nothing(index_elements=["story_id"])
        .returning(ALERT.c.id, ALERT.c.story_id)
    )


@functools.cache
def insert_deliveries(dialect: str) -> Any:
    """Delivery rows (executemany), skipping an (alert, channel) that has one."""
    return dialect_insert(dialect, DELIVERY).on_conflict_do_nothing(
        index_elements=["alert_id", "channel"]
    )


@functools.cache
def source_polled(columns: tuple[str, ...]) -> Any:
    """Source ``source_name`` polled with success: each of ``columns`` set from the
    parameter of its name with a ``new_`` prefix (a column's own name is reserved for
    SQLAlchemy in a SET clause); returns its id. One statement per set of columns."""
    return (
        sa.update(SOURCE)
        .where(SOURCE.c.name == sa.bindparam("source_name"))
        .values({name: sa.bindparam(f"new_{name}") for name in columns})
        .returning(SOURCE.c.id)
    )
