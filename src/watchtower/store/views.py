"""Frozen read models handed out by :class:`watchtower.store.Store`.

All datetimes are timezone-aware UTC. Text fields are untrusted web content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watchtower.models import Explanation

__all__ = ["AlertView", "DeliveryJob", "DigestRow", "SourceHealth", "SourceLink"]


@dataclass(frozen=True, slots=True)
class DigestRow:
    """A digest being sent: its period, Message-ID and the alerts it carries."""

    id: int
    period: str
    message_id: str
    alert_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SourceLink:
    """One item of a story: which outlet carried it, under what title and link."""

    source: str
    title: str
    url: str | None
    published: datetime | None


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert as shown to people: the firing item, every outlet, and why it fired.

    ``title``, ``url``, ``source``, ``published``, ``diff`` come from the item that made
    the alert fire; ``sources`` lists every item of the story, oldest first.
    """

    id: int
    story_id: int
    created_at: datetime
    score: float
    title: str
    url: str | None
    source: str
    published: datetime | None
    sources: tuple[SourceLink, ...]
    explanation: Explanation
    diff: tuple[str, ...] = ()
    archive: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """One claimed outbox row. ``message_id`` is the stable webhook-id / Message-ID seed."""

    id: int
    alert_id: int
    channel: str
    message_id: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """Health of one source for ``watchtower status`` and failure reports."""

    name: str
    kind: str
    url: str
    last_polled_at: datetime | None
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    failing_since: datetime | None
    failure_reported: bool
    next_due_at: datetime | None
    items_last_day: int
    alerts_last_day: int
