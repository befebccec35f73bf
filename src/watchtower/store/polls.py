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
   their deliveries; the new items go into the full-text index
   (:mod:`watchtower.store.search`) in the same transaction.

Everything runs on the caller's connection, inside its one transaction.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watchtower import alerting, models
from watchtower.alerting import KnownStory, PollPlan, StoryIndex
from watchtower.store import statements
from watchtower.store.base import (
    STORY,
    key_hash,
    safe,
    safe_opt,
)
from watchtower.store.search import ItemText, new_item_texts
from watchtower.store.sources import SourcesMixin

Clean = Callable[[str], str]
CleanOpt = Callable[[str | None], str | None]
Index = Callable[[Sequence[ItemText]], None]


def stored_guids(conn: Connection, source_id: int, guids: Sequence[str]) -> set[str]:
    """The guids among ``guids`` already stored for the source (one query per 500).

    Looked up by their fixed-length :func:`key_hash` (the indexed ``guid_key``), so a
    guid of any length is found the same way on every database.
    """
    found: set[str] = set()
    by_key = {key_hash(g): g for g in dict.fromkeys(guids)}
    keys = list(by_key)
    for start in range(0, len(keys), 500):
        params = {"source_id": source_id, "keys": keys[start : start + 500]}
        found.update(
            by_key[key] for key in conn.execute(statements.stored_guid_keys(), params).scalars()
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
    unique = [sig for sig in dict.fromkeys(signatures) if sig]
    found = dict(zip(unique, index.find_many(unique), strict=True))
    wanted = {story_id for story_id in found.values() if story_id is not None}
    if not wanted:
        return {}
    params = {"ids": sorted(wanted), "since": now - window}
    rows = conn.execute(statements.recent_stories(), params).all()
    ids = {"ids": [r.id for r in rows]}
    alerted = set(conn.execute(statements.alerted_stories(), ids).scalars())
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

    def __init__(self, conn: Connection, clean: Clean, clean_opt: CleanOpt, index: Index):
        self.conn = conn
        self.dialect = conn.dialect.name
        self.index = index
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
            for number, story_id in zip(new, self._insert_returning_ids(rows), strict=True):
                ids[number] = int(story_id)
        return ids

    def _insert_returning_ids(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert story ``rows`` in one statement; their new ids, in the order of ``rows``.

        SQLite cannot order RETURNING rows in a batch (SQLAlchemy would send one INSERT
        per row), but it gives the rows of one INSERT consecutive ascending rowids in
        VALUES order (one above the largest, as ``story.id`` is a plain INTEGER PRIMARY
        KEY), so the sorted ids are in order. Other databases order them themselves.
        """
        ids = self.conn.execute(statements.insert_stories(self.dialect), rows).scalars()
        if self.dialect == "sqlite":
            return sorted(int(i) for i in ids)
        return [int(i) for i in ids]

    def _insert_items(
        self, source_id: int, plan: PollPlan, story_ids: dict[int, int], now: datetime
    ) -> dict[int, int]:
        """Insert the items; returns position in plan.items → item id."""
        rows = [
            self._item_row(source_id, item.scored, story_ids[item.story], now)
            for item in plan.items
        ]
        stmt = statements.insert_items(self.dialect)
        by_key = {row.guid_key: int(row.id) for row in self.conn.execute(stmt, rows)}
        self.index(new_item_texts(rows, by_key))
        return {
            position: by_key[row["guid_key"]]
            for position, row in enumerate(rows)
            if row["guid_key"] in by_key
        }

    def _item_row(
        self, source_id: int, scored: models.ScoredEntry, story_id: int, now: datetime
    ) -> dict[str, Any]:
        entry = scored.entry
        guid = self.clean(entry.guid)
        return {
            "source_id": source_id,
            "guid": guid,
            "guid_key": key_hash(guid),
            "url": self.clean_opt(entry.url),
            "title": self.clean(entry.title),
            "summary": self.clean(entry.summary),
            "content": self.clean(entry.content),
            "published_at": entry.published,
            "fetched_at": now,
            "kind": entry.kind,
            "diff": [self.clean(line) for line in entry.diff],
            "score": float(scored.score.value),
            "explanation_text": scored.explanation_text(),
            "signature": scored.signature,
            "story_id": story_id,
        }

    def _update_stories(self, plan: PollPlan, story_ids: dict[int, int], now: datetime) -> None:
        grown = [(n, s) for n, s in enumerate(plan.stories) if s.added and not s.created]
        if not grown:
            return
        self.conn.execute(
            statements.grow_stories(),
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
                    "explanation_text": scored.explanation_text(),
                    "created_at": now,
                }
            )
        if not rows:
            return []
        stmt = statements.insert_alerts(self.dialect)
        created = sorted(self.conn.execute(stmt, rows).all(), key=lambda r: int(r.id))
        deliveries = [
            new_delivery(channel, now, alert_id=int(row.id))
            for row in created
            for channel in channels_of[int(row.story_id)]
        ]
        if deliveries:
            self.conn.execute(statements.insert_deliveries(self.dialect), deliveries)
        return [int(row.id) for row in created]


log = logging.getLogger(__name__)
#: How many of the most recently seen stories the in-memory story index holds.
STORY_INDEX_LIMIT = 20_000


class PollsMixin(SourcesMixin):
    """Items and stories: a poll's reads (seen guids, known stories) and its one write."""

    def unseen_guids(self, name: str, guids: Sequence[str]) -> set[str]:
        """The guids among ``guids`` not yet stored for source ``name``.

        Lets the pipeline score only new items; ``record_poll`` checks again itself.
        """
        with self._tx("looking up stored items") as conn:
            source_id = self._source_id(conn, name)
            stored = stored_guids(conn, source_id, [safe(g) for g in guids])
        return {g for g in guids if safe(g) not in stored}

    @property
    def story_index_factory(self) -> Callable[[], StoryIndex]:
        """Makes an empty story index; the poll's own stories are matched with one too."""
        return self._index_factory

    def _story_index(self, conn: Connection) -> StoryIndex:
        """The index of recent stories, loaded on first use (inside the caller's
        transaction): a cycle of unchanged sources (all 304) never pays for it.
        """
        if self._index is None:
            index = self._index_factory()
            rows = conn.execute(
                sa.select(STORY.c.id, STORY.c.signature)
                .where(sa.func.length(STORY.c.signature) > 0)
                .order_by(STORY.c.last_seen_at.desc(), STORY.c.id.desc())
                .limit(STORY_INDEX_LIMIT)
            ).all()
            for row in reversed(rows):
                index.add(int(row.id), bytes(row.signature))
            self._index = index
        return self._index

    def unseen_entries(self, name: str, entries: Sequence[models.Entry]) -> list[models.Entry]:
        """The entries of source ``name`` not stored yet, the first one of each guid."""
        by_guid: dict[str, models.Entry] = {}
        for entry in entries:
            by_guid.setdefault(safe(entry.guid), entry)
        if not by_guid:
            return []
        with self._tx("looking up stored items") as conn:
            source_id = self._source_id(conn, name)
            stored = stored_guids(conn, source_id, list(by_guid))
        return [entry for guid, entry in by_guid.items() if guid not in stored]

    def unseen_scored(
        self, name: str, scored: Sequence[models.ScoredEntry]
    ) -> list[models.ScoredEntry]:
        """:meth:`unseen_entries` for scored entries: those of source ``name`` not
        stored yet, the first one of each guid, in order."""
        by_guid: dict[str, models.ScoredEntry] = {}
        for entry in scored:
            by_guid.setdefault(safe(entry.entry.guid), entry)
        unseen = self.unseen_entries(name, [s.entry for s in by_guid.values()])
        return [by_guid[safe(entry.guid)] for entry in unseen]

    def known_stories(
        self, signatures: Sequence[bytes], *, now: datetime, window: timedelta
    ) -> dict[bytes, KnownStory]:
        """Signature → the stored story the story index finds for it, seen within ``window``.

        A story's signature matches by the index's rule (near-duplicate for the MinHash
        index the daemon uses); an empty signature never matches.
        """
        if not any(signatures):
            return {}
        with self._lock:
            try:
                with self._tx("looking up stories") as conn:
                    return known_stories(
                        conn, self._story_index(conn), signatures, now=now, window=window
                    )
            except BaseException:
                self._rebuild_index_after_rollback()
                raise

    def write_poll(
        self,
        name: str,
        state: models.FetchState,
        plan: PollPlan,
        *,
        now: datetime,
        next_due_at: datetime | None = None,
    ) -> models.PollOutcome:
        """Write one successful poll of source ``name`` in ONE transaction.

        ``plan`` (from :func:`watchtower.alerting.decide`) gives the new items, their
        stories, the alerts and one pending delivery per alert and channel (due ``now``).
        An item whose (source, guid) is stored already is skipped, with its alert; a story
        that has an alert gets no second one. The source gets ``state`` (etag,
        last_modified, page_hash: pass the current values again after a 304), a clean
        health record and ``next_due_at``; a snapshot whose hash differs from the newest
        is stored, keeping 10. Raises ``StoreError`` (nothing is written then).
        """
        with self._lock:
            try:
                with self._tx(f"storing a poll of {name!r}") as conn:
                    source_id = self._source_id(conn, name)
                    writer = PlanWriter(conn, safe, safe_opt, self.index_at_commit)
                    outcome, created = writer.write(source_id, plan, now)
                    self._update_source(conn, name, state, now, next_due_at)
            except BaseException:
                self._rebuild_index_after_rollback()
                raise
            if self._index is not None:
                for story_id, signature in created:
                    self._index.add(story_id, signature)
        if outcome.new_items:
            log.info(
                "source %s: %d new items, %d new alerts, %d joined stories",
                name,
                outcome.new_items,
                len(outcome.new_alerts),
                outcome.joined_stories,
            )
        return outcome

    def record_poll(
        self,
        name: str,
        state: models.FetchState,
        entries: Sequence[models.ScoredEntry],
        *,
        threshold: float,
        channels: Callable[[float], Sequence[str]],
        now: datetime,
        next_due_at: datetime | None = None,
        story_window: timedelta = timedelta(days=3),
    ) -> models.PollOutcome:
        """Store one successful poll of already scored entries, holding the writer lock.

        The poll's last stages in one call: drop the entries already stored, find their
        known stories within ``story_window``, plan with
        :func:`watchtower.alerting.decide` (``threshold``, ``channels``) and
        :meth:`write_poll` the plan. Raises ``StoreError``.
        """
        with self._lock:
            fresh = self.unseen_scored(name, entries)
            known = self.known_stories([s.signature for s in fresh], now=now, window=story_window)
            plan = alerting.decide(
                fresh,
                known,
                threshold=threshold,
                channels=channels,
                now=now,
                index_factory=self._index_factory,
            )
            return self.write_poll(name, state, plan, now=now, next_due_at=next_due_at)

    def _rebuild_index_after_rollback(self) -> None:
        self._index = None  # reloaded from the table by the next poll with new items


def new_message_id() -> str:
    """``"msg_"`` + 24 URL-safe random characters: a delivery's stable message id."""
    return "msg_" + secrets.token_urlsafe(18)


def new_delivery(channel: str, now: datetime, **owner: int) -> dict[str, Any]:
    """A delivery row due ``now`` on ``channel``: pending, no attempts, a fresh message
    id; ``owner`` names what it delivers (``alert_id=…`` or ``event_id=…``)."""
    return {
        **owner,
        "channel": channel,
        "message_id": new_message_id(),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
