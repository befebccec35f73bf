"""Story assignment and the alert decision for one poll's new items: a :class:`PollPlan`.

:func:`decide` is pure: it reads the poll's new, scored items and the known stories
their signatures found, and returns what the store must write. The rules:

1. A new item joins the known story its signature found (the caller passes only stories
   seen within the story window), else a story created earlier in this poll whose
   signature matches (``index_factory`` gives the same near-duplicate rule the store's
   story index uses), else it starts a story. An empty signature always starts a story.
2. A story's ``best_score`` is the highest score among its items.
3. The first item whose score alerts at ``threshold`` (see :meth:`Score.alerts_at`) in a
   story with no alert yet fires the story's alert. A new item joining a story that
   already has an alert counts in ``joined``.
4. Each alert gets one delivery per distinct channel in ``channels(score)``, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from watchtower.models import ScoredEntry


class StoryIndex(Protocol):
    """Finds the story an item belongs to from its near-duplicate signature.

    ``find`` returns the key (a story id, or a position) of a story whose signature
    matches by the index's rule, else ``None`` (``find_many``: for many signatures at
    once); ``add`` registers a story. The store keeps
    one over recent stories (checking the story window itself, rebuilding it after a
    rollback); :func:`decide` makes an empty one per poll for the poll's own stories.
    Implementations: ``store.ExactStoryIndex`` (equal bytes) and
    ``story_index.MinHashStoryIndex`` (near-duplicates; the daemon's).
    """

    def find(self, signature: bytes) -> int | None: ...

    def find_many(self, signatures: Sequence[bytes]) -> list[int | None]:
        """:meth:`find` for each signature, against the index as it is now."""
        ...

    def add(self, story_id: int, signature: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class KnownStory:
    """A stored story within the story window, as the store found it for a signature."""

    id: int
    signature: bytes
    title: str
    url: str | None
    best_score: float
    last_seen_at: datetime
    has_alert: bool


@dataclass(frozen=True, slots=True)
class PlannedStory:
    """A story this poll touches: an existing one (``id`` set) or a new one (``id`` None)."""

    id: int | None
    signature: bytes
    title: str
    url: str | None
    best_score: float
    last_seen_at: datetime
    added: int

    @property
    def created(self) -> bool:
        return self.id is None


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """A new item and the position of its story in :attr:`PollPlan.stories`."""

    scored: ScoredEntry
    story: int


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    """An alert for story ``story`` fired by item ``item`` (positions in the plan)."""

    story: int
    item: int
    score: float
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PollPlan:
    """Everything one poll writes besides the source's fetch state."""

    stories: tuple[PlannedStory, ...] = ()
    items: tuple[PlannedItem, ...] = ()
    alerts: tuple[PlannedAlert, ...] = ()
    joined: int = 0


@dataclass(eq=False)  # compared by identity while planning
class _Story:
    id: int | None
    signature: bytes
    title: str
    url: str | None
    best_score: float
    last_seen_at: datetime
    has_alert: bool = False
    added: int = 0
    alert_item: int | None = None
    items: list[int] = field(default_factory=list)


def decide(
    fresh: Sequence[ScoredEntry],
    known: Mapping[bytes, KnownStory],
    *,
    threshold: float,
    channels: Callable[[float], Sequence[str]],
    now: datetime,
    index_factory: Callable[[], StoryIndex],
) -> PollPlan:
    """The plan for ``fresh`` (new items, one per guid) given the ``known`` stories."""
    existing: dict[int, _Story] = {}
    local: list[_Story] = []  # stories created by this poll, in order
    local_index = index_factory()
    touched: list[_Story] = []
    items: list[PlannedItem] = []
    joined = 0
    for scored in fresh:
        story = _story_for(scored, known, existing, local, local_index, now)
        if story not in touched:
            touched.append(story)
        position = len(items)
        items.append(PlannedItem(scored, -1))
        story.items.append(position)
        story.added += 1
        story.best_score = max(story.best_score, float(scored.score.value))
        if story.has_alert:
            joined += 1
        elif scored.score.alerts_at(threshold):
            story.has_alert = True
            story.alert_item = position
    stories = tuple(
        PlannedStory(s.id, s.signature, s.title, s.url, s.best_score, s.last_seen_at, s.added)
        for s in touched
    )
    for number, story in enumerate(touched):
        for position in story.items:
            items[position] = PlannedItem(items[position].scored, number)
    alerts = tuple(
        PlannedAlert(
            number,
            s.alert_item,
            float(fresh[s.alert_item].score.value),
            tuple(dict.fromkeys(channels(float(fresh[s.alert_item].score.value)))),
        )
        for number, s in enumerate(touched)
        if s.alert_item is not None
    )
    return PollPlan(stories, tuple(items), alerts, joined)


def _story_for(
    scored: ScoredEntry,
    known: Mapping[bytes, KnownStory],
    existing: dict[int, _Story],
    local: list[_Story],
    local_index: StoryIndex,
    now: datetime,
) -> _Story:
    signature = scored.signature
    if signature:
        found = known.get(signature)
        if found is not None:
            story = existing.get(found.id)
            if story is None:
                story = existing[found.id] = _Story(
                    found.id,
                    found.signature,
                    found.title,
                    found.url,
                    found.best_score,
                    found.last_seen_at,
                    has_alert=found.has_alert,
                )
            return story
        position = local_index.find(signature)
        if position is not None:
            return local[int(position)]
    entry = scored.entry
    story = _Story(None, signature, entry.title, entry.url, float(scored.score.value), now)
    local.append(story)
    if signature:
        local_index.add(len(local) - 1, signature)
    return story
