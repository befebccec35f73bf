"""One poll's new items, stories, alerts and deliveries written in a few set-wise statements.

A poll of a changed feed brings tens of items. Writing them row by row costs five
statements per item (insert, story lookup, story write, item update, alert check), and
SQLAlchemy's per-statement overhead dominated a poll cycle. Here each kind of row is
planned in memory first, then written with one multi-row statement:

1. which guids are already stored: one SELECT (per 500);
2. which story each new item joins: the in-memory story index, then one SELECT of the
   candidate stories (to apply the story window) and one SELECT of their alerts;
3. one INSERT of the new stories, one of the items (with their story), one UPDATE
   (executemany) of the stories that grew, one INSERT of the alerts and one of their
   deliveries.

Everything runs on the caller's connection, inside its one transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watchtower import models
from watchtower.store import tables

ITEM = tables.Item.__table__  # type: ignore[attr-defined]
STORY = tables.Story.__table__  # type: ignore[attr-defined]
ALERT = tables.Alert.__table__  # type: ignore[attr-defined]
DELIVERY = tables.Delivery.__table__  # type: ignore[attr-defined]

Clean = Callable[[str], str]
CleanOpt = Callable[[str | None], str | None]


@dataclass(eq=False)  # stories are compared by identity
class StoryPlan:
    """A story touched by this poll: an existing one (``id`` set) or a new one."""

    id: int | None
    signature: bytes
    title: str
    url: str | None
    best_score: float
    last_seen_at: datetime
    added: int = 0
    created: bool = False
    has_alert: bool = False
    alert_item: int | None = None  # index into the new items of the item that fires


@dataclass
class Plan:
    items: list[models.ScoredEntry] = field(default_factory=list)
    story_of: list[StoryPlan] = field(default_factory=list)
    stories: list[StoryPlan] = field(default_factory=list)
    joined: int = 0


class PollWriter:
    """Writes one poll's new entries; ``index`` is the store's story index."""

    def __init__(
        self,
        conn: Connection,
        index: Any,
        index_factory: Callable[[], Any],
        insert: Callable[[sa.Table], Any],
        clean: Clean,
        clean_opt: CleanOpt,
    ) -> None:
        self.conn = conn
        self.index = index
        self.index_factory = index_factory
        self._found: dict[bytes, int | None] = {}
        self.insert = insert
        self.clean = clean
        self.clean_opt = clean_opt

    def write(
        self,
        source_id: int,
        entries: Sequence[models.ScoredEntry],
        *,
        threshold: float,
        channels: Callable[[float], Sequence[str]],
        now: datetime,
        window: timedelta,
    ) -> models.PollOutcome:
        fresh = self._unseen(source_id, entries)
        if not fresh:
            return models.PollOutcome()
        plan = self._plan(fresh, threshold, now, window)
        self._insert_stories(plan, now)
        item_ids = self._insert_items(source_id, plan, now)
        self._update_stories(plan, now)
        alerts = self._insert_alerts(plan, item_ids, channels, now)
        for story in plan.stories:
            if story.signature and story.created and story.id is not None:
                self.index.add(story.id, story.signature)
        return models.PollOutcome(
            new_items=len(item_ids), new_alerts=tuple(alerts), joined_stories=plan.joined
        )

    # -- planning ---------------------------------------------------------------------

    def _unseen(
        self, source_id: int, entries: Sequence[models.ScoredEntry]
    ) -> list[models.ScoredEntry]:
        by_guid: dict[str, models.ScoredEntry] = {}
        for scored in entries:
            by_guid.setdefault(self.clean(scored.entry.guid), scored)
        seen = stored_guids(self.conn, source_id, list(by_guid))
        return [scored for guid, scored in by_guid.items() if guid not in seen]

    def _plan(
        self,
        fresh: list[models.ScoredEntry],
        threshold: float,
        now: datetime,
        window: timedelta,
    ) -> Plan:
        self._found = {
            scored.signature: self.index.find(scored.signature)
            for scored in fresh
            if scored.signature
        }
        existing = self._existing_stories(fresh, now, window)
        plan = Plan()
        local: list[StoryPlan] = []  # stories created by this poll, in order
        local_index = self.index_factory()  # the same near-duplicate rule, this poll only
        for scored in fresh:
            story = self._story_for(scored, existing, local, local_index, now)
            if story.created and story not in local:
                local.append(story)
                if story.signature:
                    local_index.add(len(local) - 1, story.signature)
            if story not in plan.stories:
                plan.stories.append(story)
            position = len(plan.items)
            plan.items.append(scored)
            plan.story_of.append(story)
            story.added += 1
            story.best_score = max(story.best_score, float(scored.score.value))
            if story.has_alert:
                plan.joined += 1
            elif scored.score.alerts_at(threshold):
                story.has_alert = True
                story.alert_item = position
        return plan

    def _existing_stories(
        self, fresh: list[models.ScoredEntry], now: datetime, window: timedelta
    ) -> dict[int, StoryPlan]:
        wanted = {found for found in self._found.values() if found is not None}
        if not wanted:
            return {}
        rows = self.conn.execute(
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
            self.conn.execute(
                sa.select(ALERT.c.story_id).where(ALERT.c.story_id.in_([r.id for r in rows]))
            ).scalars()
        )
        return {
            int(r.id): StoryPlan(
                int(r.id),
                r.signature or b"",
                r.title,
                r.url,
                float(r.best_score),
                r.last_seen_at,
                has_alert=int(r.id) in alerted,
            )
            for r in rows
        }

    def _story_for(
        self,
        scored: models.ScoredEntry,
        existing: dict[int, StoryPlan],
        local: list[StoryPlan],
        local_index: Any,
        now: datetime,
    ) -> StoryPlan:
        signature = scored.signature
        if signature:
            found = self._found.get(signature)
            if found is not None and found in existing:
                return existing[found]
            position = local_index.find(signature)
            if position is not None:
                return local[int(position)]
        entry = scored.entry
        return StoryPlan(
            None,
            signature,
            self.clean(entry.title),
            self.clean_opt(entry.url),
            float(scored.score.value),
            now,
            created=True,
        )

    # -- writing -----------------------------------------------------------------------

    def _insert_stories(self, plan: Plan, now: datetime) -> None:
        new = [s for s in plan.stories if s.created]
        if not new:
            return
        rows = [
            {
                "title": s.title,
                "url": s.url,
                "signature": s.signature,
                "first_seen_at": now,
                "last_seen_at": now,
                "best_score": s.best_score,
                "item_count": s.added,
            }
            for s in new
        ]
        ids = (
            self.conn.execute(
                sa.insert(STORY).returning(STORY.c.id, sort_by_parameter_order=True), rows
            )
            .scalars()
            .all()
        )
        for story, story_id in zip(new, ids, strict=True):
            story.id = int(story_id)

    def _insert_items(self, source_id: int, plan: Plan, now: datetime) -> dict[int, int]:
        """Insert the items; returns position in plan.items → item id."""
        rows = [
            self._item_row(source_id, s, story, now)
            for s, story in zip(plan.items, plan.story_of, strict=True)
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
        self, source_id: int, scored: models.ScoredEntry, story: StoryPlan, now: datetime
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
            "story_id": story.id,
        }

    def _update_stories(self, plan: Plan, now: datetime) -> None:
        grown = [s for s in plan.stories if s.added and not s.created]
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
                    "story_id": s.id,
                    "added": s.added,
                    "seen": max(s.last_seen_at, now),
                    "best": s.best_score,
                }
                for s in grown
            ],
        )

    def _insert_alerts(
        self,
        plan: Plan,
        item_ids: dict[int, int],
        channels: Callable[[float], Sequence[str]],
        now: datetime,
    ) -> list[int]:
        rows = []
        for story in plan.stories:
            position = story.alert_item
            if position is None or position not in item_ids:
                continue
            scored = plan.items[position]
            rows.append(
                {
                    "story_id": story.id,
                    "item_id": item_ids[position],
                    "score": float(scored.score.value),
                    "explanation": scored.score.explanation.to_dict(),
                    "created_at": now,
                }
            )
        if not rows:
            return []
        stmt = (
            self.insert(ALERT)
            .on_conflict_do_nothing(index_elements=["story_id"])
            .returning(ALERT.c.id, ALERT.c.story_id, ALERT.c.score)
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
            for channel in dict.fromkeys(channels(float(row.score)))
        ]
        if deliveries:
            self.conn.execute(
                self.insert(DELIVERY).on_conflict_do_nothing(
                    index_elements=["alert_id", "channel"]
                ),
                deliveries,
            )
        return [int(row.id) for row in created]


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


def new_message_id() -> str:
    """``"msg_"`` + 24 URL-safe random characters: a delivery's stable message id."""
    return "msg_" + secrets.token_urlsafe(18)
