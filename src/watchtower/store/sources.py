"""Sources: the configured list, fetch state between polls, failures and health."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watchtower import models
from watchtower.errors import StoreError
from watchtower.store import statements, tables
from watchtower.store.base import (
    ALERT,
    ITEM,
    SNAPSHOT,
    SOURCE,
    StoreBase,
    clip,
    safe,
    safe_opt,
)
from watchtower.store.views import SourceHealth


def _state(row: Any, snapshot: str | None) -> models.SourceState:
    return models.SourceState(
        name=row.name,
        etag=row.etag,
        last_modified=row.last_modified,
        page_hash=row.page_hash,
        snapshot=snapshot,
        consecutive_failures=row.consecutive_failures,
        last_error=row.last_error,
        last_success_at=row.last_success_at,
        next_due_at=row.next_due_at,
    )


SNAPSHOTS_KEPT = 10


def _snapshot_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SourcesMixin(StoreBase):
    """The ``source`` table: what is polled, its fetch state and its health."""

    def sync_sources(self, sources: Sequence[tuple[str, str, str]]) -> None:
        """Make the ``source`` table list every configured (name, kind, url).

        New names are inserted, a changed kind or url is updated, sources no longer
        configured are left alone (their history stays).
        """
        with self._tx("syncing sources") as conn:
            known = {
                row.name: (row.kind, row.url)
                for row in conn.execute(sa.select(SOURCE.c.name, SOURCE.c.kind, SOURCE.c.url))
            }
            for name, kind, url in sources:
                if name not in known:
                    conn.execute(
                        self._insert(SOURCE)
                        .values(
                            name=name,
                            kind=kind,
                            url=url,
                            consecutive_failures=0,
                            failure_reported=False,
                            created_at=tables.utcnow(),
                        )
                        .on_conflict_do_nothing(index_elements=["name"])
                    )
                elif known[name] != (kind, url):
                    conn.execute(
                        sa.update(SOURCE).where(SOURCE.c.name == name).values(kind=kind, url=url)
                    )
                known[name] = (kind, url)

    def source_states(self) -> dict[str, models.SourceState]:
        """Every source's state in two queries (sources, then their newest snapshots):
        what a poll cycle over many sources reads once instead of once per source.
        """
        with self._tx("reading source states") as conn:
            rows = conn.execute(sa.select(SOURCE)).all()
            newest = (
                sa.select(SNAPSHOT.c.source_id, sa.func.max(SNAPSHOT.c.id).label("id"))
                .group_by(SNAPSHOT.c.source_id)
                .subquery()
            )
            snapshots = {
                int(row.source_id): str(row.text)
                for row in conn.execute(
                    sa.select(SNAPSHOT.c.source_id, SNAPSHOT.c.text).join(
                        newest, SNAPSHOT.c.id == newest.c.id
                    )
                )
            }
        return {row.name: _state(row, snapshots.get(row.id)) for row in rows}

    def source_state(self, name: str) -> models.SourceState:
        """What the store remembers about ``name``; ``snapshot`` is the newest snapshot text.

        Raises ``StoreError`` for a source never synced.
        """
        with self._tx("reading source state") as conn:
            row = self._source_row(conn, name)
            snapshot = conn.execute(
                sa.select(SNAPSHOT.c.text)
                .where(SNAPSHOT.c.source_id == row.id)
                .order_by(SNAPSHOT.c.taken_at.desc(), SNAPSHOT.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        return _state(row, snapshot)

    def record_failure(
        self, name: str, reason: str, *, now: datetime, next_due_at: datetime | None
    ) -> int:
        """Record a failed poll of ``name``; returns the new consecutive failure count.

        Sets ``last_error`` (``reason`` must hold no secrets), ``last_polled_at``,
        ``next_due_at`` and ``failing_since`` if not already failing.
        """
        with self._tx("recording a failure") as conn:
            count = conn.execute(
                sa.update(SOURCE)
                .where(SOURCE.c.name == name)
                .values(
                    consecutive_failures=SOURCE.c.consecutive_failures + 1,
                    last_error=clip(reason),
                    last_polled_at=now,
                    failing_since=sa.func.coalesce(SOURCE.c.failing_since, sa.bindparam("fs")),
                    next_due_at=next_due_at,
                )
                .returning(SOURCE.c.consecutive_failures),
                {"fs": now},
            ).scalar_one_or_none()
            if count is None:
                raise StoreError(f"store: unknown source {name!r} (sync_sources first)")
        return int(count)

    def record_not_modified(self, polls: Sequence[models.NotModified]) -> None:
        """Record many 304 polls in ONE transaction (one executemany UPDATE).

        Each source gets its validators, ``last_polled_at`` = ``last_success_at`` =
        ``polled_at``, ``next_due_at`` and a clean health record, as :meth:`write_poll`
        gives a successful poll. A name not in the ``source`` table is skipped. Raises
        ``StoreError`` (nothing is written then).
        """
        if not polls:
            return
        statement = (
            sa.update(SOURCE)
            .where(SOURCE.c.name == sa.bindparam("b_name"))
            .values(
                etag=sa.bindparam("b_etag"),
                last_modified=sa.bindparam("b_last_modified"),
                page_hash=sa.bindparam("b_page_hash"),
                last_polled_at=sa.bindparam("b_polled_at"),
                last_success_at=sa.bindparam("b_polled_at"),
                consecutive_failures=0,
                last_error=None,
                failing_since=None,
                failure_reported=False,
                next_due_at=sa.bindparam("b_next_due_at"),
            )
        )
        rows = [
            {
                "b_name": p.name,
                "b_etag": safe_opt(p.etag),
                "b_last_modified": safe_opt(p.last_modified),
                "b_page_hash": safe_opt(p.page_hash),
                "b_polled_at": p.polled_at,
                "b_next_due_at": p.next_due_at,
            }
            for p in polls
        ]
        with self._tx(f"recording {len(polls)} unchanged polls") as conn:
            conn.execute(statement, rows)

    def mark_failure_reported(self, name: str) -> None:
        """Remember that the current failure streak of ``name`` has been reported."""
        with self._tx("marking a failure reported") as conn:
            conn.execute(
                sa.update(SOURCE).where(SOURCE.c.name == name).values(failure_reported=True)
            )

    def source_health(self, now: datetime) -> list[SourceHealth]:
        """Every known source with its health and item/alert counts of the last 24 h."""
        day_ago = now - timedelta(days=1)
        items = (
            sa.select(ITEM.c.source_id, sa.func.count().label("n"))
            .where(ITEM.c.fetched_at >= day_ago)
            .group_by(ITEM.c.source_id)
            .subquery()
        )
        alerts = (
            sa.select(ITEM.c.source_id, sa.func.count().label("n"))
            .select_from(ALERT.join(ITEM, ITEM.c.id == ALERT.c.item_id))
            .where(ALERT.c.created_at >= day_ago)
            .group_by(ITEM.c.source_id)
            .subquery()
        )
        query = (
            sa.select(
                SOURCE,
                sa.func.coalesce(items.c.n, 0).label("items_last_day"),
                sa.func.coalesce(alerts.c.n, 0).label("alerts_last_day"),
            )
            .select_from(
                SOURCE.outerjoin(items, items.c.source_id == SOURCE.c.id).outerjoin(
                    alerts, alerts.c.source_id == SOURCE.c.id
                )
            )
            .order_by(SOURCE.c.name)
        )
        with self._tx("reading source health") as conn:
            rows = conn.execute(query).all()
        return [
            SourceHealth(
                name=row.name,
                kind=row.kind,
                url=row.url,
                last_polled_at=row.last_polled_at,
                last_success_at=row.last_success_at,
                consecutive_failures=row.consecutive_failures,
                last_error=row.last_error,
                failing_since=row.failing_since,
                failure_reported=bool(row.failure_reported),
                next_due_at=row.next_due_at,
                items_last_day=int(row.items_last_day),
                alerts_last_day=int(row.alerts_last_day),
            )
            for row in rows
        ]

    def _update_source(
        self,
        conn: Connection,
        name: str,
        state: models.FetchState,
        now: datetime,
        next_due_at: datetime | None,
    ) -> None:
        polled = {
            "etag": safe_opt(state.etag),
            "last_modified": safe_opt(state.last_modified),
            "page_hash": safe_opt(state.page_hash),
            "last_polled_at": now,
            "last_success_at": now,
            "consecutive_failures": 0,
            "last_error": None,
            "failing_since": None,
            "failure_reported": False,
            "next_due_at": next_due_at,
        }
        params = {f"new_{column}": value for column, value in polled.items()}
        params["source_name"] = name
        stmt = statements.source_polled(tuple(polled))
        source_id = conn.execute(stmt, params).scalar_one()
        if state.snapshot is not None:
            self._store_snapshot(conn, int(source_id), safe(state.snapshot), now)

    @staticmethod
    def _store_snapshot(conn: Connection, source_id: int, text: str, now: datetime) -> None:
        digest = _snapshot_hash(text)
        newest = conn.execute(
            sa.select(SNAPSHOT.c.hash)
            .where(SNAPSHOT.c.source_id == source_id)
            .order_by(SNAPSHOT.c.taken_at.desc(), SNAPSHOT.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if newest == digest:
            return
        conn.execute(
            sa.insert(SNAPSHOT).values(source_id=source_id, taken_at=now, text=text, hash=digest)
        )
        keep = (
            sa.select(SNAPSHOT.c.id)
            .where(SNAPSHOT.c.source_id == source_id)
            .order_by(SNAPSHOT.c.taken_at.desc(), SNAPSHOT.c.id.desc())
            .limit(SNAPSHOTS_KEPT)
        )
        conn.execute(
            sa.delete(SNAPSHOT).where(
                SNAPSHOT.c.source_id == source_id,
                SNAPSHOT.c.id.not_in(sa.select(keep.subquery().c.id)),
            )
        )
