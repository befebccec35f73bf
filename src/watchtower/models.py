"""Frozen, typed data passed between pipeline stages.

fetch → :class:`FetchResult`; parse → :class:`Entry` (feeds, JSON Feed, new links and
changed text of pages); matcher → :class:`Score` with its :class:`Explanation`.
Nothing here does I/O. Every text field holds *untrusted* plain text taken from the
web: templates must escape it and only ``http(s)`` URLs may become links.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Literal, TypeVar

T = TypeVar("T")

EntryKind = Literal["feed", "page"]
MatchKind = Literal["term", "phrase", "entity", "concept", "seed", "exclude"]


def _pickles_by_position(cls: type[T]) -> type[T]:
    """Pickle instances as ``(cls, field values)``: what crosses to and from the worker
    processes by the thousand (a slotted dataclass's own state restore looks its fields
    up again for every object, several times slower to load)."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    def __reduce__(self: T) -> tuple[type[T], tuple[Any, ...]]:
        return cls, tuple([getattr(self, name) for name in names])

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]
    return cls


@_pickles_by_position
@dataclass(frozen=True, slots=True)
class FetchResult:
    """One HTTP answer for a source: 200 with a body, or 304 with none.

    ``headers`` has lower-case names. ``url`` is the final URL after redirects.
    """

    url: str
    status: int
    body: bytes
    headers: Mapping[str, str]
    etag: str | None = None
    last_modified: str | None = None
    elapsed: float = 0.0

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@_pickles_by_position
@dataclass(frozen=True, slots=True)
class Entry:
    """One item found in a source: a feed entry, or new/changed text on a page.

    ``guid`` is stable within its source (feed guid, else canonical link, else a hash
    of title and summary). ``url`` is canonical (no tracking parameters, no
    fragment) and always http(s) or ``None``. ``published`` is timezone-aware UTC or
    ``None``. ``diff`` holds the added lines of a page change, empty for feed items.
    """

    source: str
    guid: str
    title: str
    url: str | None = None
    summary: str = ""
    content: str = ""
    published: datetime | None = None
    kind: EntryKind = "feed"
    diff: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The body the matcher reads: summary and content, without repeats."""
        if not self.content or self.content.startswith(self.summary):
            return self.content or self.summary
        if self.summary.startswith(self.content):
            return self.summary
        return f"{self.summary}\n{self.content}"


@_pickles_by_position
@dataclass(frozen=True, slots=True)
class Match:
    """One reason a score moved: a term, phrase, entity, concept, seed or exclude."""

    kind: MatchKind
    label: str
    contribution: float
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "contribution": round(self.contribution, 4),
            "count": self.count,
        }


@_pickles_by_position
@dataclass(frozen=True, slots=True)
class Explanation:
    """Why an item scored what it did. Stored with the item, shown in every alert.

    ``about`` is the plain-words reason ("About North Korea (in the title); on forced
    repatriation; closest to the seed '…'"); ``matches`` the evidence, each with its
    share of the score's evidence (0–1); ``lang`` the item's language and ``excerpt``
    a few plain-text sentences of it.
    """

    matches: tuple[Match, ...] = ()
    nearest_seed: str | None = None
    seed_similarity: float = 0.0
    excluded_by: str | None = None
    notes: tuple[str, ...] = ()
    about: str = ""
    lang: str = "und"
    excerpt: str = ""

    def by_kind(self, *kinds: MatchKind) -> tuple[Match, ...]:
        return tuple(m for m in self.matches if m.kind in kinds)

    def summary(self) -> str:
        """One plain-words line saying what the item is about and why it scored."""
        if self.excluded_by:
            return f"Excluded: it mentions {self.excluded_by!r}"
        if self.about:
            return self.about
        parts = []
        ents = [m.label for m in self.by_kind("entity")]
        terms = [m.label for m in self.by_kind("term", "phrase")]
        if ents:
            parts.append("About " + ", ".join(ents[:3]))
        if terms:
            parts.append("on " + ", ".join(terms[:4]))
        if self.nearest_seed:
            parts.append(f"closest to the seed {self.nearest_seed!r}")
        return "; ".join(parts) or "Nothing of the subject matched"

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text: what the store keeps of an explanation."""
        return json.dumps(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "matches": [m.to_dict() for m in self.matches],
            "nearest_seed": self.nearest_seed,
            "seed_similarity": round(self.seed_similarity, 4),
            "excluded_by": self.excluded_by,
            "notes": list(self.notes),
            "lang": self.lang,
            "excerpt": self.excerpt,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Explanation:
        plain = cls._from_dict(data)
        summary = str(data.get("summary") or "")
        if summary and summary != plain.summary():
            return replace(plain, about=summary)
        return plain

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> Explanation:
        return cls(
            matches=tuple(
                Match(m["kind"], m["label"], float(m["contribution"]), int(m.get("count", 1)))
                for m in data.get("matches", ())
            ),
            nearest_seed=data.get("nearest_seed"),
            seed_similarity=float(data.get("seed_similarity", 0.0)),
            excluded_by=data.get("excluded_by"),
            notes=tuple(data.get("notes", ())),
            lang=str(data.get("lang") or "und"),
            excerpt=str(data.get("excerpt") or ""),
        )


@_pickles_by_position
@dataclass(frozen=True, slots=True)
class Score:
    """A relevance score in [0, 1] and the reasons for it."""

    value: float
    explanation: Explanation = field(default_factory=Explanation)

    def alerts_at(self, threshold: float) -> bool:
        return self.explanation.excluded_by is None and self.value >= threshold


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store remembers about a source between polls."""

    name: str
    etag: str | None = None
    last_modified: str | None = None
    page_hash: str | None = None
    snapshot: str | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    last_success_at: datetime | None = None
    next_due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FetchState:
    """The new fetch state written with a poll's items, in the same transaction."""

    etag: str | None = None
    last_modified: str | None = None
    page_hash: str | None = None
    snapshot: str | None = None


@_pickles_by_position
@dataclass(frozen=True, slots=True)
class NotModified:
    """A poll answered 304: all the store keeps of it is the source's new state (the
    validators, a clean health record, when it was polled and is due again)."""

    name: str
    etag: str | None
    last_modified: str | None
    page_hash: str | None
    polled_at: datetime
    next_due_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScoredEntry:
    """An entry with its score and its near-duplicate signature (see ``dedupe``).

    ``explanation_json`` is the JSON text of ``score.explanation.to_dict()``, made by the
    process that scored the entry (a parse worker), so that the store need not encode it;
    ``""`` when not made. A new score goes with :meth:`rescored`, which drops it.
    """

    entry: Entry
    score: Score
    signature: bytes = b""
    explanation_json: str = ""

    def rescored(self, score: Score) -> ScoredEntry:
        """This entry with ``score`` instead (its explanation encoded again when stored)."""
        return replace(self, score=score, explanation_json="")

    def explanation_text(self) -> str:
        """The JSON text of the explanation, as the store keeps it."""
        return self.explanation_json or self.score.explanation.to_json()


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one stored poll changed."""

    new_items: int = 0
    new_alerts: tuple[int, ...] = ()
    joined_stories: int = 0


@dataclass(frozen=True, slots=True)
class FetchedDocument:
    """A document as fetched, kept as evidence: what the server sent and when.

    ``headers`` has lower-case names (as in :class:`FetchResult`); ``payload`` is the
    body after content decoding; ``sha256`` is the hex SHA-256 of ``payload``;
    ``fetched_at`` is timezone-aware UTC. Written to the archive as a WARC record.
    """

    url: str
    status: int
    headers: Mapping[str, str]
    payload: bytes
    sha256: str
    fetched_at: datetime

    @classmethod
    def of(cls, result: FetchResult, fetched_at: datetime) -> FetchedDocument:
        """The evidence record of one fetched answer (a page, an article, a PDF)."""
        return cls(
            url=result.url,
            status=result.status,
            headers=dict(result.headers),
            payload=result.body,
            sha256=hashlib.sha256(result.body).hexdigest(),
            fetched_at=fetched_at,
        )


@dataclass(frozen=True, slots=True)
class Labelled:
    """One judged item, to learn from: plain-text ``title`` and body ``text``; ``label``
    2 relevant, 1 borderline (not learned from), 0 not relevant.

    ``origin`` is ``"import"`` (``feedback import``) or ``"alert"`` (an analyst's verdict
    on the alert ``alert_id``).
    """

    title: str
    text: str
    label: int
    url: str | None = None
    origin: Literal["import", "alert"] = "import"
    alert_id: int | None = None
    created_at: datetime | None = None
