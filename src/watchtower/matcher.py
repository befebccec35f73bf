"""Scoring one item against the :class:`~watchtower.baseline.Baseline`.

How relevance is decided (the README's "How relevance is decided" explains the evidence):

1. **Exclude rules** — if the title or text contains an ``exclude`` phrase, the score is
   0 and ``excluded_by`` names the rule.
2. **Subject concept** — the configured ``entities`` (the subject's names and aliases:
   North Korea, DPRK, Pyongyang…). Evidence grows with mentions, a title mention counts
   most: ``S = 1 - exp(-(title·TITLE_SUBJECT + body mentions) / SUBJECT_SCALE)``.
3. **Topic concept** — the weighted watch ``terms`` (what about the subject matters:
   forced repatriation, prison camp, special rapporteur…), longest match first, with a
   title boost: ``T = 1 - exp(-Σ weight·(1 + ½·ln count)(1 + title)·far / TOPIC_SCALE)``
   where ``far`` is ``FAR_DISCOUNT`` for a body term more than ``PASSAGE`` words from
   every subject mention (long pages: a sidebar's words are not the article's topic).
   Without configured terms, the most distinctive learned seed terms stand in.
4. **Co-occurrence** — both concepts must be present: the main signal is the geometric
   mean ``√(S·T)``; a subject mention within ``NEAR`` words of a topic term adds a
   proximity bonus.
5. **Seed similarity** — cosine between the item and each seed over the learned,
   distinctiveness-weighted terms and phrases; the best seed is ``nearest_seed``.
   A secondary signal: on its own it cannot tell missile news from rights news.
6. A logistic squashes the sum so that 0.5 is the natural boundary (the default
   ``alerts.threshold``).

The :class:`Matcher` is a plain picklable object (it pickles as its baseline and is
rebuilt in the receiving process); scoring needs no I/O and no global state.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchtower.baseline import Baseline, BaselineSettings, load_baseline, phrase_key, tokens
from watchtower.errors import WatchtowerError
from watchtower.models import Explanation, Match, MatchKind, Score
from watchtower.sources.normalize import html_to_text

# Scoring constants. They are few, round, and chosen from the shape of the problem (see
# the README); they are not fitted item by item.
TITLE_SUBJECT = 1.5  # a subject mention in the title counts as 1.5 extra body mentions
SUBJECT_SCALE = 2.0
MAX_SUBJECT_MENTIONS = 4
TITLE_TOPIC = 1.0  # a topic term in the title counts double
TOPIC_SCALE = 4.0
NEAR = 12  # words between a subject mention and a topic term for the proximity bonus
PASSAGE = 60  # a body topic term farther than this from every subject mention counts less
FAR_DISCOUNT = 0.25
BIAS = -6.0
W_COOCCUR = 8.0
W_NEAR = 0.8
W_SEED = 3.0

LEARNED_TOPIC_TERMS = 40  # without configured terms: learned words used as topic terms
LEARNED_TOPIC_PHRASES = 40
MAX_MATCHES = 24
SEED_PARTS = 6  # how many learned features the explanation names for the nearest seed


class ScoreInputError(WatchtowerError):
    """A line of ``watchtower score`` input is not a usable JSON object.

    ``line`` is the 1-based line number; the message says what is wrong and how to fix it.
    """

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"input line {line}: {problem}")


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: str  # "entity" (subject) | "term" (topic) | "exclude" | "phrase" (learned)
    label: str
    weight: float
    length: int


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
    topic_terms: Mapping[str, float]
    topic_counts: Mapping[str, int]
    seed_parts: tuple[tuple[MatchKind, str, float, int], ...]


def _logistic(z: float) -> float:
    if z < -30:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


def topic_terms(baseline: Baseline) -> dict[str, float]:
    """The topic concept: the configured watch terms; when none are configured, the
    most distinctive learned seed terms and phrases that are not subject aliases,
    weighted 1–3 by distinctiveness (a usable start that ``watchtower baseline`` shows
    and the analyst then corrects in the YAML)."""
    if baseline.watch_terms:
        return dict(baseline.watch_terms)
    subject = {
        tok
        for name, aliases in baseline.entities.items()
        for alias in (name, *aliases)
        for tok in phrase_key(alias).split()
    }
    learned = [
        w
        for w in (*baseline.phrases[:LEARNED_TOPIC_PHRASES], *baseline.terms[:LEARNED_TOPIC_TERMS])
        if not set(w.key.split()) & subject
    ]
    top = max((w.weight for w in learned), default=1.0)
    return {w.label: round(1.0 + 2.0 * w.weight / top, 2) for w in learned}


def _phrase_table(
    baseline: Baseline,
) -> dict[str, list[tuple[tuple[str, ...], list[_Entry]]]]:
    """First token → [(token tuple, entries)], longest phrase first."""
    table: dict[tuple[str, ...], list[_Entry]] = {}

    def add(text: str, entry_kind: str, label: str, weight: float) -> None:
        key = tuple(phrase_key(text).split())
        if not key:
            return
        entries = table.setdefault(key, [])
        if not any(e.kind == entry_kind for e in entries):
            entries.append(_Entry(entry_kind, label, weight, len(key)))

    for name, aliases in baseline.entities.items():
        for alias in (name, *aliases):
            add(alias, "entity", name, 1.0)
    for term, weight in topic_terms(baseline).items():
        add(term, "term", term, weight)
    for rule in baseline.exclude:
        add(rule, "exclude", rule, 0.0)
    for ph in baseline.phrases:
        add(ph.key, "phrase", ph.label, ph.weight)
    starts: dict[str, list[tuple[tuple[str, ...], list[_Entry]]]] = {}
    for key, entries in table.items():
        starts.setdefault(key[0], []).append((key, entries))
    for cands in starts.values():
        cands.sort(key=lambda c: -len(c[0]))
    return starts


class Matcher:
    """Scores items against one baseline. Cheap to build, picklable, thread-safe."""

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self._starts = _phrase_table(baseline)
        self._vocab = {t.key: t.weight for t in baseline.terms}
        self._labels = {t.key: t.label for t in (*baseline.terms, *baseline.phrases)}
        self._feature_w = {**self._vocab, **{p.key: p.weight for p in baseline.phrases}}
        self._phrase_w = {p.key: p.weight for p in baseline.phrases}
        self._seed_titles = tuple(s.title for s in baseline.seeds)
        inverted: dict[str, list[tuple[int, float]]] = {}
        for i, seed_vec in enumerate(baseline.seed_vectors):
            for t, w in seed_vec.items():
                inverted.setdefault(t, []).append((i, w))
        self._inverted = {t: tuple(v) for t, v in inverted.items()}

    def __reduce__(self) -> tuple[type[Matcher], tuple[Baseline]]:
        return (Matcher, (self.baseline,))

    # ------------------------------------------------------------------ scanning

    def _scan(self, toks: Sequence[str]) -> list[tuple[int, tuple[str, ...], list[_Entry]]]:
        """Non-overlapping longest matches of configured/learned phrases: (pos, key, entries).

        Within each kind (entity, term, exclude) matches do not overlap and the longest
        wins; different kinds may overlap ("defectors" may be both an entity alias and a
        term). Learned phrases may overlap freely.
        """
        found: list[tuple[int, tuple[str, ...], list[_Entry]]] = []
        covered = {"entity": 0, "term": 0, "exclude": 0}
        starts = self._starts
        n = len(toks)
        for i in [i for i, tok in enumerate(toks) if tok in starts]:
            for key, entries in starts[toks[i]]:
                k = len(key)
                if i + k > n or (k > 1 and tuple(toks[i : i + k]) != key):
                    continue
                keep = []
                for e in entries:
                    end = covered.get(e.kind)
                    if end is None:
                        keep.append(e)
                    elif i >= end:
                        keep.append(e)
                        covered[e.kind] = i + k
                if keep:
                    found.append((i, key, keep))
        return found

    # ------------------------------------------------------------------ scoring

    def features(self, title: str, text: str) -> Features:
        """The evidence the score is made of (see the module docstring)."""
        title_toks = tokens(title)
        toks = title_toks + tokens(text)
        n_title = len(title_toks)
        hits = self._scan(toks)
        excluded = next((e.label for _, _, es in hits for e in es if e.kind == "exclude"), None)
        sim, nearest, sim_parts = self._seed_similarity(toks, hits)
        subj_by: dict[str, int] = {}
        subj_pos: list[int] = []
        term_hits: list[tuple[int, _Entry]] = []
        for pos, _key, entries in hits:
            for e in entries:
                if e.kind == "entity":
                    subj_pos.append(pos)
                    subj_by[e.label] = subj_by.get(e.label, 0) + 1
                elif e.kind == "term":
                    term_hits.append((pos, e))
        subj_title = bool(subj_pos) and subj_pos[0] < n_title
        body_mentions = sum(1 for p in subj_pos if p >= n_title)
        subj_raw = (TITLE_SUBJECT if subj_title else 0.0) + min(body_mentions, MAX_SUBJECT_MENTIONS)
        term_counts: dict[str, tuple[float, int, bool, bool]] = {}
        for pos, e in term_hits:
            w, c, in_title, close = term_counts.get(e.label, (e.weight, 0, False, False))
            term_counts[e.label] = (
                w,
                c + 1,
                in_title or pos < n_title,
                close or pos < n_title or _within(subj_pos, pos, PASSAGE),
            )
        topic_by: dict[str, float] = {}
        for label, (w, c, in_title, close) in term_counts.items():
            topic_by[label] = (
                w
                * (1.0 + 0.5 * math.log(c))
                * (1.0 + TITLE_TOPIC * in_title)
                * (1.0 if close else FAR_DISCOUNT)
            )
        topic_pos = [pos for pos, _e in term_hits]
        return Features(
            subject=1.0 - math.exp(-subj_raw / SUBJECT_SCALE),
            topic=1.0 - math.exp(-sum(topic_by.values()) / TOPIC_SCALE),
            near=_near(subj_pos, topic_pos, NEAR),
            seed_similarity=sim,
            nearest_seed=nearest,
            excluded_by=excluded,
            subject_mentions=subj_by,
            topic_terms=topic_by,
            topic_counts={k: v[1] for k, v in term_counts.items()},
            seed_parts=tuple(sim_parts),
        )

    def score(self, title: str, text: str) -> Score:
        """Score one item (plain-text ``title`` and body ``text``) in [0, 1].

        The explanation lists the subject entities and topic terms with their
        contributions (logit units; an entity's or term's share of the co-occurrence
        signal), the concepts, the learned seed terms and phrases that make the item
        resemble its nearest seed, that seed's title and similarity, and the exclude
        rule if one fired (then the value is 0).
        """
        f = self.features(title, text)
        nearest = self._seed_titles[f.nearest_seed] if f.nearest_seed is not None else None
        if f.excluded_by is not None:
            return Score(
                0.0,
                Explanation(
                    matches=(Match("exclude", f.excluded_by, 0.0),),
                    nearest_seed=nearest,
                    seed_similarity=f.seed_similarity,
                    excluded_by=f.excluded_by,
                ),
            )
        cooc = math.sqrt(f.subject * f.topic)
        z = BIAS + W_COOCCUR * cooc + (W_NEAR if f.near else 0.0) + W_SEED * f.seed_similarity
        return Score(round(_logistic(z), 6), self._explain(f, cooc, nearest))

    def _explain(self, f: Features, cooc: float, nearest: str | None) -> Explanation:
        matches: list[Match] = []
        half = W_COOCCUR * cooc / 2.0
        total_subj = sum(f.subject_mentions.values())
        for label, c in sorted(f.subject_mentions.items(), key=lambda kv: -kv[1]):
            matches.append(Match("entity", label, half * c / total_subj, c))
        total_topic = sum(f.topic_terms.values())
        for label, part in sorted(f.topic_terms.items(), key=lambda kv: -kv[1]):
            kind: MatchKind = "phrase" if " " in label.strip() else "term"
            matches.append(Match(kind, label, half * part / total_topic, f.topic_counts[label]))
        if cooc > 0:
            matches.append(Match("concept", "subject + topic", W_COOCCUR * cooc))
        if f.near:
            matches.append(Match("concept", "subject near topic", W_NEAR))
        for kind, label, part, count in f.seed_parts:
            matches.append(Match(kind, label, W_SEED * part, count))
        notes = (
            f"subject {f.subject:.2f}, topic {f.topic:.2f}, "
            f"seed similarity {f.seed_similarity:.2f}",
        )
        return Explanation(
            matches=tuple(matches[:MAX_MATCHES]),
            nearest_seed=nearest,
            seed_similarity=round(f.seed_similarity, 4),
            notes=notes,
        )

    def _item_vector(
        self, toks: Sequence[str], hits: Sequence[tuple[int, tuple[str, ...], list[_Entry]]]
    ) -> tuple[dict[str, float], dict[str, int]]:
        vocab = self._vocab
        counts = {t: c for t, c in Counter(toks).items() if t in vocab}
        for _pos, key, entries in hits:
            if any(e.kind == "phrase" for e in entries):
                k = " ".join(key)
                counts[k] = counts.get(k, 0) + 1
        weights = self._feature_w
        return {t: (1.0 + math.log(c)) * weights[t] for t, c in counts.items()}, counts

    def _seed_similarity(
        self,
        toks: Sequence[str],
        hits: Sequence[tuple[int, tuple[str, ...], list[_Entry]]],
    ) -> tuple[float, int | None, list[tuple[MatchKind, str, float, int]]]:
        """Cosine to the nearest seed over learned terms and phrases; with the parts
        (kind, label, share of the similarity, count) of the strongest features."""
        vec, counts = self._item_vector(toks, hits)
        norm = math.sqrt(sum(v * v for v in vec.values()))
        if not norm:
            return 0.0, None, []
        dots = [0.0] * len(self.baseline.seed_vectors)
        inverted = self._inverted
        for t, v in vec.items():
            for i, w in inverted.get(t, ()):
                dots[i] += v * w
        best = max(dots, default=0.0)
        best_i = dots.index(best) if best > 0 else None
        if best_i is None:
            return 0.0, None, []
        seed_vec = self.baseline.seed_vectors[best_i]
        shares = sorted(((vec[t] * seed_vec.get(t, 0.0) / norm, t) for t in vec), reverse=True)
        parts: list[tuple[MatchKind, str, float, int]] = [
            ("seed", self._labels.get(t, t), share, counts[t])
            for share, t in shares[:SEED_PARTS]
            if share > 0
        ]
        return min(1.0, best / norm), best_i, parts


def _within(sorted_positions: Sequence[int], pos: int, window: int) -> bool:
    i = bisect_left(sorted_positions, pos - window)
    return i < len(sorted_positions) and sorted_positions[i] <= pos + window


def _near(a: Sequence[int], b: Sequence[int], window: int) -> bool:
    if not a or not b:
        return False
    return any(abs(x - y) <= window for x in a for y in b[:50])


def build_matcher(cfg: BaselineSettings, cache_path: Path | None = None) -> Matcher:
    """Load (or build and cache) the baseline for ``cfg`` and return its matcher."""
    return Matcher(load_baseline(cfg, cache_path=cache_path))


# --------------------------------------------------------------------------- JSONL


def _field(obj: Mapping[str, Any], name: str, lineno: int) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ScoreInputError(lineno, f'"{name}" must be a string, got {type(value).__name__}')
    return html_to_text(value) if "<" in value or "&" in value else value


def parse_item(line: str, lineno: int) -> tuple[Any, str, str]:
    """One input line → (id, title, text); raises :class:`ScoreInputError`."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ScoreInputError(
            lineno,
            f"not valid JSON ({exc.msg} at column {exc.colno}); "
            'expected one object a line like {"id": "1", "title": "…", "summary": "…"}',
        ) from exc
    if not isinstance(obj, dict):
        raise ScoreInputError(lineno, f"expected a JSON object, got {type(obj).__name__}")
    if "id" not in obj or not isinstance(obj["id"], str | int) or isinstance(obj["id"], bool):
        raise ScoreInputError(lineno, 'missing "id" (a string or integer)')
    if not isinstance(obj.get("title"), str):
        raise ScoreInputError(lineno, 'missing "title" (a string)')
    title = _field(obj, "title", lineno)
    summary = _field(obj, "summary", lineno)
    content = _field(obj, "content", lineno)
    if content and not content.startswith(summary):
        text = content if summary.startswith(content) else f"{summary}\n{content}".strip()
    else:
        text = content or summary
    return obj["id"], title, text


def score_jsonl(
    lines: Iterable[str], matcher: Matcher, threshold: float
) -> Iterator[dict[str, Any]]:
    """Score JSON-lines input for ``watchtower score``.

    Each non-blank line is ``{"id", "title", "summary"?, "content"?, "url"?}``
    (``summary``/``content`` may be HTML). Yields ``{"id", "score", "alert",
    "explanation"}`` per line, ``alert`` = not excluded and score ≥ ``threshold``.
    A malformed line raises :class:`ScoreInputError` naming its line number (items
    before it have already been yielded).
    """
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        item_id, title, text = parse_item(line, lineno)
        sc = matcher.score(title, text)
        yield {
            "id": item_id,
            "score": round(sc.value, 4),
            "alert": sc.alerts_at(threshold),
            "explanation": sc.explanation.to_dict(),
        }
