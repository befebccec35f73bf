"""Alerts: reading them back with every outlet of their story; row counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watchtower import models
from watchtower.store import tables
from watchtower.store.base import (
    ALERT,
    DELIVERY,
    ITEM,
    SOURCE,
    STORY,
    StoreBase,
    safe,
)
from watchtower.store.views import AlertView, SourceLink


class AlertsMixin(StoreBase):
    """Reads of alerts (``alerts``, the digest, ``status``)."""

    def list_alerts(self, limit: int = 50, since: datetime | None = None) -> list[AlertView]:
        """Stored alerts, newest first; only those created at or after ``since`` if given."""
        query = self._alert_query().order_by(ALERT.c.created_at.desc(), ALERT.c.id.desc())
        if since is not None:
            query = query.where(ALERT.c.created_at >= since)
        with self._tx("listing alerts") as conn:
            rows = conn.execute(query.limit(limit)).all()
            return self._alert_views(conn, rows)

    def alert_view(self, alert_id: int) -> AlertView | None:
        """One alert by id, or ``None``."""
        with self._tx("reading an alert") as conn:
            rows = conn.execute(self._alert_query().where(ALERT.c.id == alert_id)).all()
            views = self._alert_views(conn, rows)
        return views[0] if views else None

    def set_alert_archive(self, alert_id: int, archive: Mapping[str, Any] | None) -> bool:
        """Record where alert ``alert_id``'s document was archived.

        ``archive`` is ``{"path", "sha256", "fetched_at"}`` (``ArchiveRecord.to_dict()``)
        or ``None`` to clear it; it is stored as given in the alert's ``archive`` column,
        in its own transaction (the alert was committed before). Returns False when no
        such alert exists. Raises ``StoreError``.
        """
        value = None if archive is None else {str(k): safe(str(v)) for k, v in archive.items()}
        with self._tx("recording an alert's archive") as conn:
            done = conn.execute(
                sa.update(ALERT).where(ALERT.c.id == alert_id).values(archive=value)
            )
            return bool(done.rowcount)

    def alert_item_guids(self, alert_ids: Sequence[int]) -> dict[int, str]:
        """Alert id → the guid of the item that fired it, for the ids that exist."""
        if not alert_ids:
            return {}
        query = (
            sa.select(ALERT.c.id, ITEM.c.guid)
            .select_from(ALERT.join(ITEM, ITEM.c.id == ALERT.c.item_id))
            .where(ALERT.c.id.in_(list(alert_ids)))
        )
        with self._tx("reading alert items") as conn:
            return {int(row.id): str(row.guid) for row in conn.execute(query)}

    @staticmethod
    def _alert_query() -> sa.Select[Any]:
        return sa.select(
            ALERT.c.id,
            ALERT.c.story_id,
            ALERT.c.created_at,
            ALERT.c.score,
            ALERT.c.explanation,
            ALERT.c.archive,
            ITEM.c.title,
            ITEM.c.url,
            ITEM.c.published_at,
            ITEM.c.diff,
            SOURCE.c.name.label("source"),
        ).select_from(
            ALERT.join(ITEM, ITEM.c.id == ALERT.c.item_id).join(
                SOURCE, SOURCE.c.id == ITEM.c.source_id
            )
        )

    @staticmethod
    def _alert_views(conn: Connection, rows: Sequence[Any]) -> list[AlertView]:
        if not rows:
            return []
        links: dict[int, list[SourceLink]] = {}
        story_ids = {row.story_id for row in rows}
        for link in conn.execute(
            sa.select(
                ITEM.c.story_id,
                SOURCE.c.name,
                ITEM.c.title,
                ITEM.c.url,
                ITEM.c.published_at,
            )
            .select_from(ITEM.join(SOURCE, SOURCE.c.id == ITEM.c.source_id))
            .where(ITEM.c.story_id.in_(story_ids))
            .order_by(ITEM.c.fetched_at, ITEM.c.id)
        ):
            links.setdefault(link.story_id, []).append(
                SourceLink(link.name, link.title, link.url, link.published_at)
            )
        return [
            AlertView(
                id=row.id,
                story_id=row.story_id,
                created_at=row.created_at,
                score=float(row.score),
                title=row.title,
                url=row.url,
                source=row.source,
                published=row.published_at,
                sources=tuple(links.get(row.story_id, ())),
                explanation=models.Explanation.from_dict(row.explanation or {}),
                diff=tuple(row.diff or ()),
                archive=row.archive or None,
            )
            for row in rows
        ]

    def counts(self) -> dict[str, int]:
        """Row counts: ``items``, ``stories``, ``alerts``, ``sources`` and
        ``deliveries_<status>`` for every delivery status (0 when none)."""
        out: dict[str, int] = {}
        with self._tx("counting") as conn:
            for key, table in (
                ("sources", SOURCE),
                ("items", ITEM),
                ("stories", STORY),
                ("alerts", ALERT),
            ):
                out[key] = int(
                    conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                )
            for status in tables.DELIVERY_STATUSES:
                out[f"deliveries_{status}"] = 0
            for status, n in conn.execute(
                sa.select(DELIVERY.c.status, sa.func.count()).group_by(DELIVERY.c.status)
            ):
                out[f"deliveries_{status}"] = int(n)
        return out
