"""Items and stories: the reads a poll's plan needs and the write of that plan.

The decision of what to write (story joining, alert threshold, deliveries per channel) is
:func:`watchtower.alerting.decide`; this module only reads what it needs and writes its
:class:`~watchtower.alerting.PollPlan`, set-wise (one multi-row statement per kind of row,
because SQLAlchemy's per-statement overhead dominated a poll cycle written row by row):

1. :func:`stored_guids`: which guids are already stored (one SELECT per 500);
2. :func:`known_stories`: the stories the in-memory story index finds for the new
   signatures that were seen within the story window, with whether they have an alert;
3. :func:`write_plan`: one INSERT of the new stories, one of the items (with their story),
   one UPDATE (executemany) of the stories that grew, one INSERT of the alerts and one of
   their deliveries.

Everything runs on the caller's connection, inside its one transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watchtower import models
from watchtower.alerting import KnownStory, PollPlan, StoryIndex
from watchtower.store import tables

ITEM = tables.Item.__table__  # type: ignore[attr-defined]
STORY = tables.Story.__table__  # type: ignore[attr-defined]
ALERT = tables.Alert.__table__  # type: ignore[attr-defined]
DELIVERY = tables.Delivery.__table__  # type: ignore[attr-defined]

Clean = Callable[[str], str]
CleanOpt = Callable[[str | None], str | None]
Insert = Callable[[sa.Table], Any]


def stored_guids(conn: Connection, source_id: int, guids: Sequence[str]) -> set[str]:
    """The guids among ``guids`` already stored for the source (one query per 500)."""
    found: set[str] = set()
    unique = list(dict.fromkeys(guids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        found.update(
            conn.execute(
                sa.select(ITEM.c.guid).where(ITEM.c.source_id == source_id, ITEM.c.guid.in_(chunk))
            ).scalars()
        )
    return found


def known_stories(
    conn: Connection,
    index: StoryIndex,
    signatures: Sequence[bytes],
    *,
    now: datetime,
    window: timedelta,
) -> dict[bytes, KnownStory]:
    """Signature → the stored story ``index`` finds for it, if seen within ``window``."""
    found = {sig: index.find(sig) for sig in dict.fromkeys(signatures) if sig}
    wanted = {story_id for story_id in found.values() if story_id is not None}
    if not wanted:
        return {}
    rows = conn.execute(
        sa.select(
            STORY.c.id,
            STORY.c.signature,
            STORY.c.title,
            STORY.c.url,
            STORY.c.best_score,
            STORY.c.last_seen_at,
        ).where(STORY.c.id.in_(wanted), STORY.c.last_seen_at >= now - window)
    ).all()
    alerted = set(
        conn.execute(
            sa.select(ALERT.c.story_id).where(ALERT.c.story_id.in_([r.id for r in rows]))
        ).scalars()
    )
    stories = {
        int(r.id): KnownStory(
            int(r.id),
            r.signature or b"",
            r.title,
            r.url,
            float(r.best_score),
            r.last_seen_at,
            int(r.id) in alerted,
        )
        for r in rows
    }
    return {
        sig: stories[story_id]
        for sig, story_id in found.items()
        if story_id is not None and story_id in stories
    }


class PlanWriter:
    """Writes one :class:`PollPlan` for one source on ``conn``."""

    def __init__(self, conn: Connection, insert: Insert, clean: Clean, clean_opt: CleanOpt):
        self.conn = conn
        self.insert = insert
        self.clean = clean
        self.clean_opt = clean_opt

    def write(
        self, source_id: int, plan: PollPlan, now: datetime
    ) -> tuple[models.PollOutcome, list[tuple[int, bytes]]]:
        """Write ``plan``; returns the outcome and the (id, signature) of new stories."""
        if not plan.items:
            return models.PollOutcome(), []
        story_ids = self._insert_stories(plan, now)
        item_ids = self._insert_items(source_id, plan, story_ids, now)
        self._update_stories(plan, story_ids, now)
        alerts = self._insert_alerts(plan, story_ids, item_ids, now)
        created = [
            (story_ids[number], story.signature)
            for number, story in enumerate(plan.stories)
            if story.created and story.signature
        ]
        outcome = models.PollOutcome(
            new_items=len(item_ids), new_alerts=tuple(alerts), joined_stories=plan.joined
        )
        return outcome, created

    def _insert_stories(self, plan: PollPlan, now: datetime) -> dict[int, int]:
        """Insert the new stories; returns story position → id, for every planned story."""
        ids = {n: s.id for n, s in enumerate(plan.stories) if s.id is not None}
        new = [n for n, s in enumerate(plan.stories) if s.id is None]
        if new:
            rows = [
                {
                    "title": self.clean(plan.stories[n].title),
                    "url": self.clean_opt(plan.stories[n].url),
                    "signature": plan.stories[n].signature,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "best_score": plan.stories[n].best_score,
                    "item_count": plan.stories[n].added,
                }
                for n in new
            ]
            created = (
                self.conn.execute(
                    sa.insert(STORY).returning(STORY.c.id, sort_by_parameter_order=True), rows
                )
                .scalars()
                .all()
            )
            for number, story_id in zip(new, created, strict=True):
                ids[number] = int(story_id)
        return ids

    def _insert_items(
        self, source_id: int, plan: PollPlan, story_ids: dict[int, int], now: datetime
    ) -> dict[int, int]:
        """Insert the items; returns position in plan.items → item id."""
        rows = [
            self._item_row(source_id, item.scored, story_ids[item.story], now)
            for item in plan.items
        ]
        stmt = (
            self.insert(ITEM)
            .on_conflict_do_nothing(index_elements=["source_id", "guid"])
            .returning(ITEM.c.id, ITEM.c.guid)
        )
        by_guid = {row.guid: int(row.id) for row in self.conn.execute(stmt, rows)}
        return {
            position: by_guid[row["guid"]]
            for position, row in enumerate(rows)
            if row["guid"] in by_guid
        }

    def _item_row(
        self, source_id: int, scored: models.ScoredEntry, story_id: int, now: datetime
    ) -> dict[str, Any]:
        entry = scored.entry
        return {
            "source_id": source_id,
            "guid": self.clean(entry.guid),
            "url": self.clean_opt(entry.url),
            "title": self.clean(entry.title),
            "summary": self.clean(entry.summary),
            "content": self.clean(entry.content),
            "published_at": entry.published,
            "fetched_at": now,
            "kind": entry.kind,
            "diff": [self.clean(line) for line in entry.diff],
            "score": float(scored.score.value),
            "explanation": scored.score.explanation.to_dict(),
            "signature": scored.signature,
            "story_id": story_id,
        }

    def _update_stories(self, plan: PollPlan, story_ids: dict[int, int], now: datetime) -> None:
        grown = [(n, s) for n, s in enumerate(plan.stories) if s.added and not s.created]
        if not grown:
            return
        self.conn.execute(
            sa.update(STORY)
            .where(STORY.c.id == sa.bindparam("story_id"))
            .values(
                item_count=STORY.c.item_count + sa.bindparam("added"),
                last_seen_at=sa.bindparam("seen"),
                best_score=sa.bindparam("best"),
            ),
            [
                {
                    "story_id": story_ids[n],
                    "added": s.added,
                    "seen": max(s.last_seen_at, now),
                    "best": s.best_score,
                }
                for n, s in grown
            ],
        )

    def _insert_alerts(
        self, plan: PollPlan, story_ids: dict[int, int], item_ids: dict[int, int], now: datetime
    ) -> list[int]:
        rows = []
        channels_of: dict[int, tuple[str, ...]] = {}
        for alert in plan.alerts:
            if alert.item not in item_ids:  # its item was stored meanwhile: no alert
                continue
            scored = plan.items[alert.item].scored
            story_id = story_ids[alert.story]
            channels_of[story_id] = alert.channels
            rows.append(
                {
                    "story_id": story_id,
                    "item_id": item_ids[alert.item],
                    "score": alert.score,
                    "explanation": scored.score.explanation.to_dict(),
                    "created_at": now,
                }
            )
        if not rows:
            return []
        stmt = (
            self.insert(ALERT)
            .on_conflict_do_nothing(index_elements=["story_id"])
            .returning(ALERT.c.id, ALERT.c.story_id)
        )
        created = sorted(self.conn.execute(stmt, rows).all(), key=lambda r: int(r.id))
        deliveries = [
            {
                "alert_id": int(row.id),
                "channel": channel,
                "message_id": new_message_id(),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for row in created
            for channel in channels_of[int(row.story_id)]
        ]
        if deliveries:
            self.conn.execute(
                self.insert(DELIVERY).on_conflict_do_nothing(
                    index_elements=["alert_id", "channel"]
                ),
                deliveries,
            )
        return [int(row.id) for row in created]


def new_message_id() -> str:
    """``"msg_"`` + 24 URL-safe random characters: a delivery's stable message id."""
    return "msg_" + secrets.token_urlsafe(18)
