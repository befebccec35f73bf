"""Feedback: the analyst's verdicts on alerts, labelled items, kept keys and search.

* :meth:`FeedbackMixin.record_feedback` stores one verdict per alert (an upsert: a
  changed verdict replaces the earlier one); :meth:`FeedbackMixin.feedback_for` reads
  them back for a set of alerts.
* :meth:`FeedbackMixin.import_labelled` stores items judged before (``watchtower
  feedback import``), all or nothing; :meth:`FeedbackMixin.labelled_items` hands every
  labelled example to whatever learns from them: the imported items and the alerts
  with a verdict (relevant → label 2, not relevant → label 0).
* :meth:`FeedbackMixin.search_alerts` finds alerts whose story has an item matching the
  user's words in the full-text index (:mod:`watchtower.store.search`).
* :meth:`FeedbackMixin.kept_key` returns a key kept in the store across restarts,
  creating it once (the web signing key when no ``web.secret`` is configured).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Literal

import sqlalchemy as sa

from watchtower.errors import StoreError
from watchtower.models import Labelled
from watchtower.store import tables
from watchtower.store.alerts import AlertsMixin
from watchtower.store.base import ALERT, ITEM, StoreBase, safe, safe_opt
from watchtower.store.search import matching_item_ids
from watchtower.store.views import AlertView

__all__ = ["FeedbackMixin", "Labelled", "StoredVerdict"]

StoredVerdict = Literal["relevant", "not-relevant"]

FEEDBACK = tables.Feedback.__table__  # type: ignore[attr-defined]
LABELLED = tables.LabelledItem.__table__  # type: ignore[attr-defined]
STORE_KEY = tables.StoreKey.__table__  # type: ignore[attr-defined]

#: Label of each verdict in :meth:`FeedbackMixin.labelled_items`.
VERDICT_LABEL: dict[str, int] = {"relevant": 2, "not-relevant": 0}
#: Most matching items a search looks at before it picks their alerts.
_SEARCH_ITEMS = 10_000


class FeedbackMixin(StoreBase):
    """Verdicts on alerts, labelled items, kept keys and full-text search of alerts."""

    def record_feedback(
        self, alert_id: int, verdict: StoredVerdict, *, now: datetime | None = None
    ) -> bool:
        """Store ``verdict`` for ``alert_id`` (at ``now``, default the current time),
        replacing any earlier one.

        Returns False (and stores nothing) when there is no such alert.
        Raises ``StoreError`` for a verdict that is not ``relevant`` / ``not-relevant``.
        """
        if verdict not in tables.VERDICTS:
            raise StoreError(f"store: unknown verdict {verdict!r} (relevant or not-relevant)")
        now = now or tables.utcnow()
        with self._tx("recording feedback") as conn:
            exists = conn.execute(sa.select(ALERT.c.id).where(ALERT.c.id == alert_id)).first()
            if exists is None:
                return False
            stmt = self._insert(FEEDBACK).values(
                alert_id=alert_id, verdict=verdict, created_at=now, updated_at=now
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["alert_id"],
                    set_={"verdict": verdict, "updated_at": now},
                )
            )
        return True

    def feedback_for(self, alert_ids: Iterable[int]) -> dict[int, StoredVerdict]:
        """Alert id → its verdict, for those of ``alert_ids`` that have one."""
        wanted = sorted(set(alert_ids))
        found: dict[int, StoredVerdict] = {}
        with self._tx("reading feedback") as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for row in conn.execute(
                    sa.select(FEEDBACK.c.alert_id, FEEDBACK.c.verdict).where(
                        FEEDBACK.c.alert_id.in_(chunk)
                    )
                ):
                    found[int(row.alert_id)] = row.verdict
        return found

    def import_labelled(self, items: Sequence[Labelled], *, now: datetime | None = None) -> int:
        """Store ``items`` (all in one transaction, or none); returns how many.

        An item without ``created_at`` gets ``now`` (default the current time).
        """
        now = now or tables.utcnow()
        rows = [
            {
                "title": safe(item.title),
                "text": safe(item.text),
                "url": safe_opt(item.url),
                "label": int(item.label),
                "created_at": item.created_at or now,
            }
            for item in items
        ]
        if not rows:
            return 0
        with self._tx("importing labelled items") as conn:
            conn.execute(sa.insert(LABELLED), rows)
        return len(rows)

    def labelled_items(self) -> list[Labelled]:
        """Every labelled example, imported ones first, then alert verdicts (oldest first)."""
        with self._tx("reading labelled items") as conn:
            imported = conn.execute(sa.select(LABELLED).order_by(LABELLED.c.id)).all()
            judged = conn.execute(
                sa.select(
                    FEEDBACK.c.alert_id,
                    FEEDBACK.c.verdict,
                    FEEDBACK.c.updated_at,
                    ITEM.c.title,
                    ITEM.c.summary,
                    ITEM.c.content,
                    ITEM.c.url,
                )
                .select_from(
                    FEEDBACK.join(ALERT, ALERT.c.id == FEEDBACK.c.alert_id).join(
                        ITEM, ITEM.c.id == ALERT.c.item_id
                    )
                )
                .order_by(FEEDBACK.c.updated_at, FEEDBACK.c.alert_id)
            ).all()
        out = [
            Labelled(r.title, r.text, int(r.label), r.url, "import", None, r.created_at)
            for r in imported
        ]
        out.extend(
            Labelled(
                r.title,
                "\n".join(p for p in (r.summary, r.content) if p),
                VERDICT_LABEL[r.verdict],
                r.url,
                "alert",
                int(r.alert_id),
                r.updated_at,
            )
            for r in judged
        )
        return out

    def search_alerts(self, q: str | None, limit: int) -> list[AlertView]:
        """Alerts, newest first, whose story has an item matching the words ``q``.

        ``q`` is the user's text, never query syntax (see :mod:`watchtower.web.search`):
        an empty ``q`` lists every alert; words nothing matches give ``[]``.
        """
        with self._tx("searching alerts") as conn:
            ids = matching_item_ids(conn, q, _SEARCH_ITEMS)
            query = AlertsMixin._alert_query()
            if ids is not None:
                if not ids:
                    return []
                stories = sa.select(ITEM.c.story_id).where(ITEM.c.id.in_(ids))
                query = query.where(ALERT.c.story_id.in_(stories))
            rows = conn.execute(
                query.order_by(ALERT.c.created_at.desc(), ALERT.c.id.desc()).limit(limit)
            ).all()
            return AlertsMixin._alert_views(conn, rows)

    def kept_key(self, name: str, make: Callable[[], bytes]) -> bytes:
        """The key called ``name`` kept in the store; made with ``make`` the first time.

        Safe when several processes ask at once: the first one's key is kept.
        """
        with self._tx("reading a kept key") as conn:
            conn.execute(
                self._insert(STORE_KEY)
                .values(name=name, value=make(), created_at=tables.utcnow())
                .on_conflict_do_nothing(index_elements=["name"])
            )
            value = conn.execute(
                sa.select(STORE_KEY.c.value).where(STORE_KEY.c.name == name)
            ).scalar_one()
        return bytes(value)
