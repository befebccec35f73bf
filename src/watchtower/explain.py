"""Plain-words explanations and excerpts for scores (what an analyst reads in an alert).

An explanation says what the item is about and why it scored, for example::

    About North Korea (in the title); on forced repatriation and prison camps;
    closest to the seed 'China shields Pyongyang from criticism at the UN…'

Its ``matches`` list the evidence behind that sentence — subject names, topic terms,
the features shared with the nearest seed — each with its *share* of the evidence
(0–1, the shares add up to 1), so no internal unit leaks into what users see.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from watchtower.models import Explanation, Match, MatchKind

EXCERPT_CHARS = 280
MAX_NAMES = 3
MIN_NAME_WEIGHT = 0.2  # lighter learned names (China, UN for this subject) are not named
MAX_TERMS = 3
MAX_MATCHES = 16
SEED_TITLE_CHARS = 60
LANGUAGES = {
    "ko": "Korean",
    "zh": "Chinese",
    "ja": "Japanese",
    "ru": "Russian",
    "ar": "Arabic",
    "he": "Hebrew",
    "th": "Thai",
    "hi": "Hindi",
}


@dataclass(frozen=True, slots=True)
class Features:
    """The evidence behind one score: concept strengths in [0, 1] and their parts."""

    subject: float
    topic: float
    near: bool
    seed_similarity: float
    nearest_seed: int | None
    excluded_by: str | None
    subject_mentions: Mapping[str, int]
    subject_in_title: tuple[str, ...]
    topic_terms: Mapping[str, float]
    topic_counts: Mapping[str, int]
    topic_in_title: tuple[str, ...]
    seed_parts: tuple[tuple[str, float], ...]  # label, share of the seed similarity
    lang: str
    subject_weights: Mapping[str, float] = field(default_factory=dict)  # name → its weight


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The first sentences of ``text``, whole, up to about ``limit`` characters (a cut
    sentence ends in "…" when even the first one is longer)."""
    head = " ".join(text[: limit * 3].split())
    if len(head) <= limit:
        return head
    window = head[: limit + 1]
    end = max(window.rfind(mark) for mark in (". ", "! ", "? ", "。", "！", "？"))
    if end >= limit // 3:
        return window[: end + 1]
    cut = window[:limit].rsplit(" ", 1)[0] if " " in window[:limit] else window[:limit]
    return cut.rstrip(",;: ") + "…"


def _series(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _short(title: str) -> str:
    if len(title) <= SEED_TITLE_CHARS:
        return title
    return title[:SEED_TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",;:–- ") + "…"


def _about(f: Features, nearest: str | None, titled: bool) -> str:
    weights = f.subject_weights
    names = sorted(
        ((n, c) for n, c in f.subject_mentions.items() if weights.get(n, 1.0) >= MIN_NAME_WEIGHT),
        key=lambda kv: -kv[1] * weights.get(kv[0], 1.0),
    )
    terms = sorted(f.topic_terms.items(), key=lambda kv: -kv[1])
    parts = []
    if names:
        where = " (in the title)" if titled else ""
        parts.append("About " + _series([n for n, _c in names[:MAX_NAMES]]) + where)
    else:
        parts.append("Not about the subject (no name of it)")
    if terms:
        parts.append("on " + _series([t for t, _w in terms[:MAX_TERMS]]))
    else:
        parts.append("no topic term")
    if nearest and f.seed_similarity >= 0.05:
        parts.append(f"closest to the seed '{_short(nearest)}'")
    lang = f.lang
    if lang in LANGUAGES:
        parts.append(f"in {LANGUAGES[lang]}")
    return "; ".join(parts)


def explain(
    f: Features,
    nearest: str | None,
    snippet: str,
    w_cooccur: float,
    w_near: float,
    w_seed: float,
) -> Explanation:
    """The explanation of a score from the matcher's features ``f`` and the weights of
    its three signals (co-occurrence, proximity, seed similarity)."""
    subject = f.subject
    topic = f.topic
    cooc = math.sqrt(subject * topic)
    near = f.near
    sim = f.seed_similarity
    total = w_cooccur * cooc + (w_near if near else 0.0) + w_seed * sim
    mentions = f.subject_mentions
    terms = f.topic_terms
    counts = f.topic_counts
    matches: list[Match] = []
    if total > 0:
        half = w_cooccur * cooc / 2.0 / total
        w = f.subject_weights
        mass = {label: c * w.get(label, 1.0) for label, c in mentions.items()}
        n_subj = sum(mass.values()) or 1.0
        for label, m in sorted(mass.items(), key=lambda kv: -kv[1]):
            matches.append(Match("entity", label, half * m / n_subj, mentions[label]))
        t_sum = sum(terms.values()) or 1.0
        for label, part in sorted(terms.items(), key=lambda kv: -kv[1]):
            kind: MatchKind = "phrase" if " " in label.strip() else "term"
            matches.append(Match(kind, label, half * part / t_sum, counts.get(label, 1)))
        if near:
            matches.append(Match("concept", "subject and topic close together", w_near / total))
        for label, share in f.seed_parts:
            matches.append(Match("seed", label, w_seed * sim * share / total))
    titled = bool(f.subject_in_title)
    notes = []
    if titled:
        notes.append("the subject is named in the title")
    if near:
        notes.append("the subject and the topic are mentioned close together")
    if cooc == 0 and mentions:
        notes.append("nothing on the topic: names alone do not make an alert")
    if cooc == 0 and terms:
        notes.append("the topic without the subject: topic words alone do not make an alert")
    return Explanation(
        matches=tuple(matches[:MAX_MATCHES]),
        nearest_seed=nearest,
        seed_similarity=round(sim, 4),
        notes=tuple(notes),
        about=_about(f, nearest, titled),
        lang=f.lang,
        excerpt=snippet,
    )


def explain_excluded(f: Features, nearest: str | None, snippet: str) -> Explanation:
    """The explanation of an item vetoed by an exclude rule."""
    rule = f.excluded_by or ""
    return Explanation(
        matches=(Match("exclude", rule, 1.0),),
        nearest_seed=nearest,
        seed_similarity=round(float(f.seed_similarity), 4),
        excluded_by=rule,
        about=f"Excluded: it mentions {rule!r}",
        lang=f.lang,
        excerpt=snippet,
    )
