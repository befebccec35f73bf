"""What the seed articles teach: the subject's names, the topic's terms and phrases.

Everything is learned against general English (the ``wordfreq`` background frequency
list), so no hand-made stop list is involved:

* **Prose only.** Lines that occur in two or more seeds (navigation, "Skip to main
  content") and short lines (under :data:`PROSE_WORDS` words: by-lines, dates, menu
  items) are boilerplate; the seed's title is kept.
* **Terms** — word families (see :mod:`watchtower.language`) weighted by how much more
  often they occur in the seeds than in general English (``log2`` of the rate ratio),
  seen at least twice.
* **Phrases** — two- and three-word sequences that recur, neither starting nor ending
  with a function word (background Zipf frequency ≥ 6), weighted by the mean
  distinctiveness of their words.
* **Subject names** — the proper names the seeds are about. A name is a run of
  capitalised words whose every word is *name-like*: written capitalised in the middle
  of seed sentences at least :data:`NAME_LIKE` of the time (``North Korea``,
  ``Pyongyang``, ``China``, ``DPRK`` — but not ``Human Rights Council``, whose words
  the seeds mostly write in lower case: an institution is a topic, not a subject).
  Forms of one name are one family (``North Korea``, ``North Korean``,
  ``North Koreans``, ``North Korea's``). A family's weight is its share of all name
  mentions relative to the most mentioned family, squared: the subject is what the
  seeds are mostly about, and a name mentioned a third as often counts a ninth.
  Names found in fewer than two seeds (by-lines, a quoted person) are dropped when
  there are two or more seeds.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from watchtower.language import key, phrase_key, tokens, words
from watchtower.seeds import Seed

LANG = "en"
FUNCTION_ZIPF = 6.0  # background Zipf frequency at or above which a word is a function word
MIN_TERM_COUNT = 2
MAX_TERMS = 400
MAX_PHRASES = 150
MAX_NAMES = 40
PROSE_WORDS = 8
NAME_LIKE = 0.8
_BACKGROUND_FLOOR = 1e-8  # frequency assumed for words wordfreq does not know

_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
_WORD = re.compile(r"[^\W_][\w’'\-]*")
_JOINERS = frozenset({"of", "the", "for", "and"})


@dataclass(frozen=True, slots=True)
class Weighted:
    """A learned term, phrase or name: match key, display label, weight."""

    key: str
    label: str
    weight: float


@dataclass(frozen=True, slots=True)
class Learned:
    """What the seeds teach (see the module docstring)."""

    terms: tuple[Weighted, ...]
    phrases: tuple[Weighted, ...]
    names: tuple[Weighted, ...]
    seed_tokens: tuple[tuple[str, ...], ...]
    proper: frozenset[str] = frozenset()  # keys of capitalised, non-acronym name words


def _background(word: str) -> float:
    # wordfreq is imported only when a baseline is learned (a cache miss): it costs a
    # tenth of a second and 30 MB at every start otherwise.
    from wordfreq import word_frequency

    return max(word_frequency(word, LANG), _BACKGROUND_FLOOR)


def is_function_word(word: str) -> bool:
    from wordfreq import zipf_frequency

    return bool(zipf_frequency(word, LANG) >= FUNCTION_ZIPF)


def prose(seeds: Sequence[Seed]) -> list[str]:
    """Each seed's title and its prose lines, without lines shared by several seeds."""
    seen: Counter[str] = Counter()
    for seed in seeds:
        seen.update({" ".join(line.split()) for line in seed.text.splitlines()})
    shared = {line for line, n in seen.items() if n > 1 and line} if len(seeds) > 1 else set()
    out = []
    for seed in seeds:
        title = " ".join(seed.title.split())
        lines = [title] if title not in shared else []
        for raw in seed.text.splitlines():
            line = " ".join(raw.split())
            if line and line not in shared and len(line.split()) >= PROSE_WORDS:
                lines.append(line)
        out.append("\n".join(lines))
    return out


def _surface_forms(texts: Iterable[str]) -> dict[str, str]:
    """Most common lower-case surface form of each key (for display)."""
    forms: dict[str, Counter[str]] = {}
    for text in texts:
        for w in words(text):
            forms.setdefault(key(w), Counter())[w] += 1
    return {k: c.most_common(1)[0][0] for k, c in forms.items()}


def _learn_terms(counts: Counter[str], total: int, forms: Mapping[str, str]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for st, n in counts.items():
        if n < MIN_TERM_COUNT or len(st) < 2 or st.isdigit():
            continue
        surface = forms.get(st, st)
        if is_function_word(surface):
            continue
        bg = max(_background(surface), _background(st))
        ratio = (n / total) / bg
        if ratio > 4.0:
            weights[st] = math.log2(ratio)
    return weights


def _grams(
    seed_tokens: Sequence[Sequence[str]], forms: Mapping[str, str]
) -> Counter[tuple[str, ...]]:
    """Two- and three-word sequences neither starting nor ending with a function word."""
    grams: Counter[tuple[str, ...]] = Counter()
    for toks in seed_tokens:
        for n in (2, 3):
            for i in range(len(toks) - n + 1):
                gram = tuple(toks[i : i + n])
                first, last = forms.get(gram[0], gram[0]), forms.get(gram[-1], gram[-1])
                if not is_function_word(first) and not is_function_word(last):
                    grams[gram] += 1
    return grams


def _learn_phrases(
    seed_tokens: Sequence[Sequence[str]],
    term_w: Mapping[str, float],
    forms: Mapping[str, str],
    total: int,
) -> list[Weighted]:
    grams = _grams(seed_tokens, forms)
    out: list[Weighted] = []
    for gram, n in grams.items():
        if n < MIN_TERM_COUNT:
            continue
        content = [term_w.get(t, 0.0) for t in gram if not is_function_word(forms.get(t, t))]
        if not content or min(content) <= 0.0:
            continue
        label = " ".join(forms.get(t, t) for t in gram)
        # how much more often the phrase occurs in the seeds than in general English
        # (wordfreq estimates a phrase's frequency from its words')
        ratio = (n / total) / _background(label)
        if ratio <= 4.0:
            continue
        out.append(Weighted(" ".join(gram), label, math.log2(ratio)))
    # drop a bigram that (nearly) only occurs inside one recurring trigram: keep the name
    kept = {w.key for w in out}
    for gram, n in grams.items():
        if len(gram) == 3 and " ".join(gram) in kept:
            for sub in (gram[:2], gram[1:]):
                if grams[sub] <= n * 1.25:
                    kept.discard(" ".join(sub))
    out = [w for w in out if w.key in kept]
    out.sort(key=lambda w: (-w.weight * math.log2(1 + grams[tuple(w.key.split())]), w.key))
    return out[:MAX_PHRASES]


# ------------------------------------------------------------------ names


def _sentences(text: str) -> Iterable[list[str]]:
    for sentence in _SENTENCE.split(text):
        ws = _WORD.findall(sentence)
        if ws:
            yield ws


def _name_like(texts: Sequence[str]) -> set[str]:
    """Keys of words written capitalised mid-sentence at least NAME_LIKE of the time."""
    capital: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for text in texts:
        for ws in _sentences(text):
            for i, w in enumerate(ws):
                k = phrase_key(w)
                if not k or " " in k:
                    continue
                if i == 0:
                    continue  # sentence-initial capitals say nothing
                total[k] += 1
                if w[0].isupper():
                    capital[k] += 1
    return {
        k
        for k, n in total.items()
        if capital[k] >= NAME_LIKE * n and not is_function_word(k) and not k.isdigit()
    }


def _name_spans(text: str, name_like: set[str]) -> Iterable[str]:
    """Runs of name-like capitalised words (``of``/``the``… may join two of them)."""
    for ws in _sentences(text):
        run: list[str] = []
        for w in [*ws, ""]:
            k = phrase_key(w) if w else ""
            if w and w[0].isupper() and k in name_like:
                run.append(w)
                continue
            if w.lower() in _JOINERS and run and run[-1].lower() not in _JOINERS:
                run.append(w)
                continue
            while run and run[-1].lower() in _JOINERS:
                run.pop()
            if run:
                yield " ".join(run)
            run = []


def _family(k: str, families: Mapping[str, str]) -> str:
    """The family key of name key ``k``: an earlier key of which it is a word form
    (``north korean`` → ``north korea``)."""
    for fam in families:
        a, b = fam.split(), k.split()
        if (
            len(a) == len(b)
            and a[:-1] == b[:-1]
            and (b[-1].startswith(a[-1]) or a[-1].startswith(b[-1]))
        ):
            return fam
    return k


def learn_names(texts: Sequence[str], name_like: set[str]) -> list[Weighted]:
    """The subject's names and their weights (see the module docstring)."""
    mentions: Counter[str] = Counter()
    labels: dict[str, Counter[str]] = {}
    spread: dict[str, set[int]] = {}
    for i, text in enumerate(texts):
        for span in _name_spans(text, name_like):
            k = phrase_key(span)
            if k:
                mentions[k] += 1
                labels.setdefault(k, Counter())[span] += 1
                spread.setdefault(k, set()).add(i)
    families: dict[str, str] = {}
    fam_mentions: Counter[str] = Counter()
    fam_spread: dict[str, set[int]] = {}
    for k, n in mentions.most_common():
        fam = _family(k, families)
        families.setdefault(fam, fam)
        families[k] = fam
        fam_mentions[fam] += n
        fam_spread.setdefault(fam, set()).update(spread[k])
    need = 2 if len(texts) > 1 else 1
    top = max(fam_mentions.values(), default=0)
    out = []
    for k, fam in families.items():
        n = fam_mentions[fam]
        if n < MIN_TERM_COUNT or len(fam_spread[fam]) < need or not top:
            continue
        out.append(Weighted(k, labels[k].most_common(1)[0][0], round((n / top) ** 2, 4)))
    out.sort(key=lambda w: (-w.weight, -mentions[w.key], w.key))
    return out[: MAX_NAMES * 3]


# ------------------------------------------------------------------ all together


def _is_acronym(word: str) -> bool:
    """``DPRK``, ``COI`` and their plurals ``POWs``, ``NGOs``: an initialism is an
    issue or an institution as often as a name, so it is not a proper-name word."""
    return word.isupper() or (len(word) > 2 and word[-1] == "s" and word[:-1].isupper())


def learn(seeds: Sequence[Seed]) -> Learned:
    """Learn terms, phrases and subject names from ``seeds``."""
    texts = prose(seeds)
    seed_tokens = [tokens(t) for t in texts]
    counts: Counter[str] = Counter()
    for toks in seed_tokens:
        counts.update(toks)
    total = sum(counts.values()) or 1
    forms = _surface_forms(texts)
    term_w = _learn_terms(counts, total, forms)
    terms = sorted(
        (Weighted(k, forms.get(k, k), w) for k, w in term_w.items()),
        key=lambda w: (-w.weight * math.log2(1 + counts[w.key]), w.key),
    )[:MAX_TERMS]
    name_like = _name_like(texts)
    acronyms = {phrase_key(w) for t in texts for w in _WORD.findall(t) if _is_acronym(w)}
    return Learned(
        terms=tuple(terms),
        phrases=tuple(_learn_phrases(seed_tokens, term_w, forms, total)),
        names=tuple(learn_names(texts, name_like)),
        seed_tokens=tuple(tuple(t) for t in seed_tokens),
        proper=frozenset(name_like - acronyms),
    )


def seed_vector(
    toks: Sequence[str], term_w: Mapping[str, float], phrase_w: Mapping[str, float]
) -> dict[str, float]:
    """Sublinear tf × distinctiveness over learned terms and phrases, L2-normalised."""
    tf: dict[str, int] = {}
    for t in toks:
        if t in term_w:
            tf[t] = tf.get(t, 0) + 1
    for n in (2, 3):
        for i in range(len(toks) - n + 1):
            k = " ".join(toks[i : i + n])
            if k in phrase_w:
                tf[k] = tf.get(k, 0) + 1
    weights = {**term_w, **phrase_w}
    vec = {t: (1.0 + math.log(n)) * weights[t] for t, n in tf.items()}
    norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
    return {t: v / norm for t, v in vec.items()}
