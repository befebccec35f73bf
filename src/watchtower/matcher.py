"""Scoring one item against the :class:`~watchtower.baseline.Baseline`.

How relevance is decided (the README's "How relevance is decided" explains the evidence):

1. **Exclude rules** — if the title or text contains an ``exclude`` phrase, the score is
   0 and ``excluded_by`` names the rule.
2. **Subject** — the subject's names in effect (learned and configured, each with a
   weight; Korean and Chinese forms are found inside words). Evidence grows with
   mentions and a title mention counts most:
   ``S = 1 - exp(-(TITLE_SUBJECT·w_title + Σ body w) / SUBJECT_SCALE)`` over the
   ``MAX_SUBJECT_MENTIONS`` weightiest body mentions. An implicit form ("the North")
   counts only when one of its context words appears.
3. **Topic** — the topic terms in effect, longest match first, with a title boost:
   ``T = 1 - exp(-Σ weight·(1 + ½·ln count)(1 + title)·far / TOPIC_SCALE)`` where
   ``far`` is ``FAR_DISCOUNT`` for a body term more than ``PASSAGE`` words from every
   subject mention (long pages: a sidebar's words are not the article's topic).
4. **Co-occurrence** — both concepts must be present: the main signal is the geometric
   mean ``√(S·T)``; a subject mention within ``NEAR`` words of a topic term adds a
   proximity bonus.
5. **Seed similarity** — cosine between the item and each seed over the learned,
   distinctiveness-weighted terms and phrases; a matched paraphrase or translation
   counts as the term it stands for, so a Korean item can resemble an English seed.
6. A logistic squashes the sum so that 0.5 is the natural boundary (the default
   ``alerts.threshold``).

The :class:`Matcher` is a plain picklable object (it pickles as its baseline and is
rebuilt in the receiving process); scoring needs no I/O and no global state.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import compress
from pathlib import Path
from typing import Any

from watchtower.baseline import Baseline, BaselineSettings
from watchtower.baseline_cache import load_baseline
from watchtower.explain import Features, excerpt, explain, explain_excluded
from watchtower.language import (
    cjk_key,
    cjk_stream,
    detect_lang,
    english_or_und,
    is_cjk,
    keys,
    latin_only,
    phrase_key,
    words,
)
from watchtower.models import Score

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
MAX_TOKENS = 20_000  # a longer item is scored on its first 20,000 words
SEED_PARTS = 6  # how many learned features the explanation names for the nearest seed


_CJK_CHAR = re.compile(
    r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: str  # "entity" (subject) | "term" (topic) | "exclude" | "phrase" (learned)
    label: str
    weight: float
    length: int
    implicit: bool = False
    canon: tuple[str, ...] = ()  # feature keys of the label other than the form's own
    joined: str = ""  # the form's key, words joined by spaces (a learned phrase's feature)


Hit = tuple[int, tuple[str, ...], list[_Entry]]


def _logistic(z: float) -> float:
    if z < -30:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


class _Tables:
    """Phrase tables of one baseline: Latin-script keys by first token, CJK forms as one
    alternation per kind (longest first), implicit-name contexts."""

    def __init__(self, baseline: Baseline, features: Mapping[str, float]) -> None:
        self._features = features
        self._latin: dict[tuple[str, ...], list[_Entry]] = {}
        self.cjk: dict[str, list[_Entry]] = {}
        for name in baseline.subject():
            entry = _Entry("entity", name.label, name.weight, 0, name.implicit)
            self._add(name.form, entry, name.label)
        for term in baseline.topic():
            self._add(term.form, _Entry("term", term.label, term.weight, 0), term.label)
        for rule in baseline.exclude:
            self._add(rule, _Entry("exclude", rule, 0.0, 0), None)
        for ph in baseline.phrases:
            self._add(ph.key, _Entry("phrase", ph.label, ph.weight, 0), None)
        self.context = {
            label: tuple(_context_key(w) for w in (*ctx, label, *baseline.entities.get(label, ())))
            for label, ctx in baseline.context.items()
        }
        self.starts = _by_first_token(self._latin)
        self.cjk_patterns = _cjk_patterns(self.cjk)

    def _canon(self, label: str | None) -> tuple[str, ...]:
        if label is None:
            return ()
        k = phrase_key(label)
        parts = [k] if k in self._features else []
        return tuple(parts + [t for t in k.split() if t in self._features and t != k])

    def _add(self, form: str, entry: _Entry, label: str | None) -> None:
        if is_cjk(form):
            ck = cjk_key(form)
            key: tuple[str, ...] = (ck,)
            table: dict[Any, list[_Entry]] = self.cjk
            slot: Any = ck
            if len(ck) < 2:
                return
        else:
            key = tuple(phrase_key(form).split())
            table, slot = self._latin, key
            if not key:
                return
        entries = table.setdefault(slot, [])
        if not any(e.kind == entry.kind for e in entries):
            joined = " ".join(key)
            canon = tuple(c for c in self._canon(label) if c != joined)
            entries.append(replace(entry, length=len(key), canon=canon, joined=joined))


def _take(
    found: list[Hit], covered: dict[str, int], i: int, key: tuple[str, ...], entries: list[_Entry]
) -> None:
    """Record a match at ``i`` of the entries whose kind is not covered there yet."""
    keep = []
    for e in entries:
        end = covered.get(e.kind)
        if end is None:
            keep.append(e)
        elif i >= end:
            keep.append(e)
            covered[e.kind] = i + len(key)
    if keep:
        found.append((i, key, keep))


def _context_key(word: str) -> tuple[str, ...]:
    return tuple(cjk_key(word)) if is_cjk(word) else tuple(phrase_key(word).split())


_Group = tuple[int, dict[tuple[str, ...], list[_Entry]]]
_Start = tuple[frozenset[str], list[_Group], list[_Entry] | None]


def _by_first_token(table: Mapping[tuple[str, ...], list[_Entry]]) -> dict[str, _Start]:
    """Per first token: the second words of its longer keys (a cheap test before any
    slicing), those keys grouped by length, longest first (a scan slices the item once
    per length and looks the slice up), and the entries of the one-word key."""
    grouped: dict[str, dict[int, dict[tuple[str, ...], list[_Entry]]]] = {}
    for key, entries in table.items():
        grouped.setdefault(key[0], {}).setdefault(len(key), {})[key] = entries
    out: dict[str, _Start] = {}
    for tok, by_len in grouped.items():
        single = by_len.pop(1, {}).get((tok,))
        seconds = frozenset(key[1] for keyed in by_len.values() for key in keyed)
        out[tok] = (seconds, sorted(by_len.items(), key=lambda kv: -kv[0]), single)
    return out


def _cjk_patterns(cjk: Mapping[str, list[_Entry]]) -> list[tuple[str, re.Pattern[str]]]:
    """One alternation per kind, longest form first: kinds may overlap, as in _scan."""
    out = []
    for kind in ("entity", "term", "exclude", "phrase"):
        forms = sorted(
            (f for f, es in cjk.items() if any(e.kind == kind for e in es)), key=len, reverse=True
        )
        if forms:
            out.append((kind, re.compile("|".join(map(re.escape, forms)))))
    return out


class Matcher:
    """Scores items against one baseline. Cheap to build, picklable, thread-safe."""

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self._vocab = {t.key: t.weight for t in baseline.terms}
        self._labels = {t.key: t.label for t in (*baseline.terms, *baseline.phrases)}
        self._feature_w = {**self._vocab, **{p.key: p.weight for p in baseline.phrases}}
        self._seed_titles = tuple(s.title for s in baseline.seeds)
        inverted: dict[str, list[tuple[int, float]]] = {}
        for i, seed_vec in enumerate(baseline.seed_vectors):
            for t, w in seed_vec.items():
                inverted.setdefault(t, []).append((i, w))
        self._inverted = {t: tuple(v) for t, v in inverted.items()}

    def __reduce__(self) -> tuple[type[Matcher], tuple[Baseline]]:
        return (Matcher, (self.baseline,))

    @cached_property
    def _tables(self) -> _Tables:
        """The phrase tables, built by the first item scored (tens of milliseconds): the
        main process, which only ships the matcher to the parse workers, never builds
        them. Two threads scoring the first items at once may both build them; the
        tables are equal."""
        return _Tables(self.baseline, self._feature_w)

    # ------------------------------------------------------------------ scanning

    def _scan(self, toks: Sequence[str], has_cjk: bool) -> list[Hit]:
        """Non-overlapping longest matches of the phrase tables: (pos, key, entries).

        Within each kind (entity, term, exclude) matches do not overlap and the longest
        wins; different kinds may overlap ("defectors" may be both a name and a term).
        Learned phrases may overlap freely. Korean and Chinese forms are found inside
        words (particles attach to nouns; Chinese has no spaces).
        """
        found: list[Hit] = []
        covered = {"entity": 0, "term": 0, "exclude": 0}
        starts = self._tables.starts
        n = len(toks)
        for i in compress(range(n), map(starts.__contains__, toks)):
            seconds, groups, single = starts[toks[i]]
            if groups and i + 1 < n and toks[i + 1] in seconds:
                for k, keyed in groups:
                    if i + k <= n:
                        key = tuple(toks[i : i + k])
                        entries = keyed.get(key)
                        if entries is not None:
                            _take(found, covered, i, key, entries)
            if single is not None:
                _take(found, covered, i, (toks[i],), single)
        if has_cjk and self._tables.cjk_patterns:
            found.extend(self._scan_cjk(toks))
            found.sort(key=lambda h: h[0])
        return found

    def _scan_cjk(self, toks: Sequence[str]) -> list[Hit]:
        stream, owner = cjk_stream(toks)
        hits: list[Hit] = []
        for kind, pattern in self._tables.cjk_patterns:
            for m in pattern.finditer(stream):
                entries = [e for e in self._tables.cjk[m.group(0)] if e.kind == kind]
                hits.append((owner[m.start()], (m.group(0),), entries))
        return hits

    def _in_context(self, label: str, toks: Sequence[str], hits: Sequence[Hit]) -> bool:
        explicit = any(e.label == label and not e.implicit for _p, _k, es in hits for e in es)
        if explicit:
            return True
        present = set(toks)
        joined = None
        spaced = None
        for ctx in self._tables.context.get(label, ()):
            if len(ctx) == 1 and ctx[0] in present:
                return True
            if len(ctx) > 1:
                if all(len(w) == 1 for w in ctx):  # a CJK word, one character a slot
                    joined = joined if joined is not None else cjk_stream(toks)[0]
                    if "".join(ctx) in joined:
                        return True
                else:
                    spaced = spaced if spaced is not None else " ".join(toks)
                    if " ".join(ctx) in spaced:
                        return True
        return False

    # ------------------------------------------------------------------ scoring

    def features(self, title: str, text: str) -> Features:
        """The evidence the score is made of (see the module docstring)."""
        title_words = words(title)
        text_words = words(text)[:MAX_TOKENS]
        if latin_only(title) and latin_only(text):
            has_cjk = False
            lang = english_or_und(title_words + text_words[:80])
        else:
            has_cjk = _CJK_CHAR.search(title) is not None or _CJK_CHAR.search(text) is not None
            lang = detect_lang(f"{title}\n{text}")
        title_toks = keys(title_words)
        toks = (title_toks + keys(text_words))[:MAX_TOKENS]
        n_title = len(title_toks)
        hits = self._scan(toks, has_cjk)
        excluded = next((e.label for _, _, es in hits for e in es if e.kind == "exclude"), None)
        sim, nearest, sim_parts = self._seed_similarity(toks, hits)
        subj_by: dict[str, int] = {}
        subj_w: dict[str, float] = {}
        subj_pos: list[int] = []
        title_w = 0.0
        body_w: list[float] = []
        in_title: list[str] = []
        term_hits: list[tuple[int, _Entry]] = []
        context_ok: dict[str, bool] = {}
        for pos, _key, entries in hits:
            for e in entries:
                if e.kind == "entity":
                    if e.implicit:
                        ok = context_ok.get(e.label)
                        if ok is None:
                            ok = context_ok[e.label] = self._in_context(e.label, toks, hits)
                        if not ok:
                            continue
                    subj_pos.append(pos)
                    subj_by[e.label] = subj_by.get(e.label, 0) + 1
                    subj_w[e.label] = max(subj_w.get(e.label, 0.0), e.weight)
                    if pos < n_title:
                        title_w = max(title_w, e.weight)
                        if e.label not in in_title:
                            in_title.append(e.label)
                    else:
                        body_w.append(e.weight)
                elif e.kind == "term":
                    term_hits.append((pos, e))
        subj_pos.sort()
        body_w.sort(reverse=True)
        subj_raw = TITLE_SUBJECT * title_w + sum(body_w[:MAX_SUBJECT_MENTIONS])
        topic_by, topic_counts, topic_title = _topic(term_hits, subj_pos, n_title)
        topic_pos = [pos for pos, _e in term_hits]
        return Features(
            subject=1.0 - math.exp(-subj_raw / SUBJECT_SCALE),
            topic=1.0 - math.exp(-sum(topic_by.values()) / TOPIC_SCALE),
            near=_near(subj_pos, topic_pos, NEAR),
            seed_similarity=sim,
            nearest_seed=nearest,
            excluded_by=excluded,
            subject_mentions=subj_by,
            subject_in_title=tuple(in_title),
            topic_terms=topic_by,
            topic_counts=topic_counts,
            topic_in_title=topic_title,
            seed_parts=tuple(sim_parts),
            lang=lang,
            subject_weights=subj_w,
        )

    def score(self, title: str, text: str) -> Score:
        """Score one item (plain-text ``title`` and body ``text``) in [0, 1].

        The explanation says in plain words what the item is about and why it scored,
        lists the evidence (subject names, topic terms, the nearest seed's shared
        features) with each one's share of it, names the nearest seed, the language and
        an excerpt, and the exclude rule if one fired (then the value is 0).
        """
        f = self.features(title, text)
        nearest = self._seed_titles[f.nearest_seed] if f.nearest_seed is not None else None
        snippet = excerpt(text or title)
        if f.excluded_by is not None:
            return Score(0.0, explain_excluded(f, nearest, snippet))
        cooc = math.sqrt(f.subject * f.topic)
        z = BIAS + W_COOCCUR * cooc + (W_NEAR if f.near else 0.0) + W_SEED * f.seed_similarity
        value = round(_logistic(z), 6)
        return Score(value, explain(f, nearest, snippet, W_COOCCUR, W_NEAR, W_SEED))

    def _item_vector(
        self, toks: Sequence[str], hits: Sequence[Hit]
    ) -> tuple[dict[str, float], dict[str, int]]:
        counts: dict[str, int] = Counter(filter(self._vocab.__contains__, toks))
        for _pos, _key, entries in hits:
            for e in entries:
                if e.kind == "phrase":
                    counts[e.joined] = counts.get(e.joined, 0) + 1
                for c in e.canon:  # a paraphrase or translation counts as its term
                    counts[c] = counts.get(c, 0) + 1
        weights = self._feature_w
        table = _SUBLINEAR
        vec = {
            t: (table[c] if c < 64 else 1.0 + math.log(c)) * weights[t] for t, c in counts.items()
        }
        return vec, counts

    def _seed_similarity(
        self, toks: Sequence[str], hits: Sequence[Hit]
    ) -> tuple[float, int | None, list[tuple[str, float]]]:
        """Cosine to the nearest seed over learned terms and phrases; with the labels
        and shares of the similarity of the strongest shared features."""
        vec, _counts = self._item_vector(toks, hits)
        norm = math.hypot(*vec.values())
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
        shared = [(v * seed_vec[t], t) for t, v in vec.items() if t in seed_vec]
        parts = [
            (self._labels.get(t, t), dot / best)
            for dot, t in sorted(shared, reverse=True)[:SEED_PARTS]
            if dot > 0
        ]
        return min(1.0, best / norm), best_i, parts


_SUBLINEAR = tuple(1.0 + math.log(c) if c else 0.0 for c in range(64))


def _topic(
    term_hits: Sequence[tuple[int, _Entry]], subj_pos: Sequence[int], n_title: int
) -> tuple[dict[str, float], dict[str, int], tuple[str, ...]]:
    counts: dict[str, tuple[float, int, bool, bool]] = {}
    for pos, e in term_hits:
        w, c, in_title, close = counts.get(e.label, (e.weight, 0, False, False))
        counts[e.label] = (
            max(w, e.weight),
            c + 1,
            in_title or pos < n_title,
            close or pos < n_title or _within(subj_pos, pos, PASSAGE),
        )
    by: dict[str, float] = {}
    for label, (w, c, in_title, close) in counts.items():
        by[label] = (
            w
            * (1.0 + 0.5 * math.log(c))
            * (1.0 + TITLE_TOPIC * in_title)
            * (1.0 if close else FAR_DISCOUNT)
        )
    titled = tuple(label for label, v in counts.items() if v[2])
    return by, {k: v[1] for k, v in counts.items()}, titled


def _within(sorted_positions: Sequence[int], pos: int, window: int) -> bool:
    i = bisect_left(sorted_positions, pos - window)
    return i < len(sorted_positions) and sorted_positions[i] <= pos + window


def _near(a: Sequence[int], b: Sequence[int], window: int) -> bool:
    if not a or not b:
        return False
    first = a[:50]
    return any(_within(first, y, window) for y in b[:50])


def build_matcher(
    cfg: BaselineSettings, cache_path: Path | None = None, *, isolated: bool = False
) -> Matcher:
    """Load (or build and cache) the baseline for ``cfg`` and return its matcher
    (``isolated``: a baseline not cached is learnt in a child process)."""
    return Matcher(load_baseline(cfg, cache_path=cache_path, isolated=isolated))
