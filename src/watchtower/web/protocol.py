"""What the review page needs from the store: the :class:`AlertReader` protocol.

The web layer never touches the database directly. The daemon hands
:func:`watchtower.web.app.create_app` an object with these four methods (the store, or
an adapter around it); tests use an in-memory fake. The methods are synchronous and
may block on I/O: the app calls them in a worker thread, so they must be safe to call
from threads other than the one that created the object.

**Alert objects** are the JSON-ready dicts of the fixed contract (DESIGN.md, "The alert
object"), with at least these keys::

    alert_id     int
    title        str            untrusted text (may contain markup; shown escaped)
    url          str | None     untrusted; only http(s) becomes a link
    score        float          0..1
    source       str            outlet of the item that fired
    published    str | None     ISO 8601 with offset
    sources      list[{"source", "title", "url", "published"}]  every outlet, oldest first
    explanation  dict           at least "summary" (str); "matches" [{"kind", "label",
                                "contribution"}] when known
    excerpt      str            a few plain-text sentences
    lang         str | None     e.g. "en", "ko", "zh"
    feedback     None | "relevant" | "not-relevant"

Extra keys (``archive``, ``type``…) are passed through to the JSON API and exports.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from watchtower.web.tokens import Verdict

__all__ = ["AlertObject", "AlertReader", "HealthState", "SourceStatus"]

#: An alert object as described in the module docstring.
AlertObject = dict[str, Any]

HealthState = Literal["ok", "failing", "quiet", "never-polled"]


class SourceStatus(TypedDict):
    """One row of the source-health page. Datetimes are timezone-aware UTC or None.

    ``state`` is ``failing`` when the last poll failed (``failing_since`` says since
    when), ``quiet`` when the source answers but brought nothing new for longer than
    its ``quiet_after``, ``never-polled`` before the first poll, else ``ok``.
    """

    name: str
    kind: str
    url: str
    state: HealthState
    last_polled: datetime | None
    last_success: datetime | None
    last_error: str | None
    failing_since: datetime | None
    last_new_item: datetime | None


@runtime_checkable
class AlertReader(Protocol):
    """Read alerts and source health; record the analyst's verdicts. Nothing else."""

    def list_alerts(self, q: str | None, limit: int) -> list[AlertObject]:
        """At most ``limit`` alert objects, newest first (by alert creation).

        ``q`` is ``None`` for all alerts, else a full-text query over the items'
        titles and text (the store's full-text index: FTS5 on SQLite, ``tsvector`` on
        PostgreSQL; Korean and Chinese need a character-level approach: see
        :mod:`watchtower.web.search` for index text and safe queries).
        The page passes the user's words through unchanged (stripped, at most 200
        characters); the reader must treat them as data, never as query syntax it
        could fail on — a query it cannot parse returns ``[]``.
        """
        ...

    def alert(self, alert_id: int) -> AlertObject | None:
        """One alert object, or ``None`` when there is no such alert."""
        ...

    def source_health(self) -> list[SourceStatus]:
        """Every configured source, in display order (usually by name)."""
        ...

    def record_feedback(self, alert_id: int, verdict: Verdict) -> None:
        """Store the verdict for ``alert_id``, replacing any earlier one.

        Called only for an alert that :meth:`alert` returned. After it returns, the
        alert objects of this alert carry ``"feedback": verdict``.
        """
        ...
