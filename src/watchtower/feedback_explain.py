"""Plain words for what feedback did to a score (see :mod:`watchtower.feedback_model`).

The explanation keeps the matcher's and adds, in ``about``, which way feedback moved
the score and what the item is like ("feedback raised the score from 0.01 to 0.97 (like
3 items you marked relevant)"); in ``notes`` also the words that moved it and an
example title. Alike means sharing words: the Jaccard overlap of the hashed word-family
sets is at least ``LIKE_OVERLAP``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from watchtower.models import Score

LIKE_OVERLAP = 0.12  # word-set overlap (Jaccard) at which an item is "like" a labelled one
LIKE_COUNT = 5  # how many of the most alike labelled items the explanation considers


@dataclass(frozen=True, slots=True)
class Example:
    """A labelled item as the explanation needs it: title, label and word-family set
    (hashed)."""

    title: str
    label: int
    words: frozenset[int]


class Neighbours:
    """The labelled items, indexed by word for :meth:`nearest` (built once per model)."""

    def __init__(self, examples: Sequence[Example]) -> None:
        self.examples = tuple(examples)
        postings: dict[int, list[int]] = {}
        for k, e in enumerate(self.examples):
            for w in e.words:
                postings.setdefault(w, []).append(k)
        self._postings = postings

    def nearest(self, words: frozenset[int]) -> list[tuple[float, Example]]:
        """The labelled items most like an item (word-set overlap ≥ ``LIKE_OVERLAP``),
        most alike first, at most ``LIKE_COUNT``."""
        common: Counter[int] = Counter()
        for w in words:
            common.update(self._postings.get(w, ()))
        alike = []
        for k, n in common.items():
            e = self.examples[k]
            overlap = n / (len(words) + len(e.words) - n)
            if overlap >= LIKE_OVERLAP:
                alike.append((overlap, e))
        alike.sort(key=lambda p: -p[0])
        return alike[:LIKE_COUNT]


def explain_shift(
    base: Score, value: float, alike: Sequence[tuple[float, Example]], words: Sequence[str] = ()
) -> Score:
    """``base`` with the new ``value`` and plain words about the feedback: in ``about``
    which way it moved the score and what the item is like ("like 3 items you marked
    relevant"); in ``notes`` also an example title and the ``words`` that moved it."""
    before = base.value
    if abs(value - before) < 0.005:
        moved = "feedback left the score as it was"
    else:
        verb = "raised" if value > before else "lowered"
        moved = f"feedback {verb} the score from {before:.2f} to {value:.2f}"
    like = _like(alike, examples=False)
    expl = base.explanation
    about = f"{expl.summary()}; {moved}" + (f" ({like})" if like else "")
    note = moved[:1].upper() + moved[1:]
    if words:
        note += " through the words " + ", ".join(f"'{w}'" for w in words)
    if like:
        note += f"; it is {_like(alike, examples=True)}"
    return Score(value, replace(expl, about=about, notes=(*expl.notes, note)))


def _like(alike: Sequence[tuple[float, Example]], *, examples: bool) -> str:
    relevant = [e for _o, e in alike if e.label == 2]
    other = [e for _o, e in alike if e.label == 0]
    parts = []
    for group, verdict in ((relevant, "relevant"), (other, "not relevant")):
        if group:
            noun = "item" if len(group) == 1 else "items"
            example = f" ('{group[0].title}')" if examples else ""
            parts.append(f"like {len(group)} {noun} you marked {verdict}{example}")
    return " and ".join(parts)
