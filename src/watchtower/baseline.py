"""Seeds + the ``baseline:`` config → a :class:`Baseline`: what the subject looks like.

What is learned from the seed articles (all against general English, using the
``wordfreq`` background frequency list, so no hand-made stop list is involved):

* **terms** — single words, weighted by how much more often they occur in the seeds
  than in general English (``log2`` of the rate ratio, words seen at least twice);
* **phrases** — two- and three-word sequences that recur in the seeds, neither starting
  nor ending with a function word (a word with a background Zipf frequency ≥ 6),
  weighted by the mean distinctiveness of their words and how often they recur;
* **seed entities** — recurring capitalised names and acronyms (``Human Rights
  Council``, ``UNHCR``);
* **seed vectors** — one weighted term vector per seed, for the nearest-seed similarity.

From the config come the analyst's **entities** (the subject's names with aliases), the
weighted watch **terms** (what about the subject matters) and the **exclude** rules.

:func:`load_baseline` computes this once and caches it as JSON; the cache is keyed by
:attr:`Baseline.fingerprint`, a hash of every seed's bytes, ``seeds.yaml``, the
baseline config and the algorithm version, so editing a seed or the config rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from watchtower.errors import ConfigError
from watchtower.seeds import Seed, metadata_digest, read_seeds

log = logging.getLogger(__name__)

ALGORITHM_VERSION = 2  # bump whenever learning changes: it invalidates every cache
LANG = "en"
FUNCTION_ZIPF = 6.0  # background Zipf frequency at or above which a word is a function word
MIN_TERM_COUNT = 2
MAX_TERMS = 400
MAX_PHRASES = 150
MAX_SEED_ENTITIES = 80
_BACKGROUND_FLOOR = 1e-8  # frequency assumed for words wordfreq does not know


def _separator_table() -> dict[int, str | None]:
    """str.translate table: punctuation, symbols, spaces and controls → space;
    apostrophes removed (``Korea's`` → ``koreas`` → stem ``korea``)."""
    table: dict[int, str | None] = {}
    ranges = (range(0x3040), range(0xFE30, 0xFE50), range(0xFF00, 0xFF66))
    for code in (c for r in ranges for c in r):
        if unicodedata.category(chr(code))[0] in "PSZC" or code == 0x5F:
            table[code] = " "
    for apostrophe in "'’ʼ":
        table[ord(apostrophe)] = None
    return table


_SEPARATORS = _separator_table()
_CAP_SPAN = re.compile(
    r"\b(?:[A-Z][\w’'\-]*|[A-Z]{2,})(?:\s+(?:of|the|for|on|and|de)?\s*(?:[A-Z][\w’'\-]*|[A-Z]{2,}))*"
)


class BaselineSettings(Protocol):
    """What the baseline needs from the ``baseline:`` config section (BaselineConfig)."""

    @property
    def seeds(self) -> Path: ...
    @property
    def terms(self) -> Mapping[str, float]: ...
    @property
    def entities(self) -> Mapping[str, Sequence[str]]: ...
    @property
    def exclude(self) -> Sequence[str]: ...
    @property
    def cache(self) -> Path | None: ...


def _stem(word: str) -> str:
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    return w


class _StemCache(dict[str, str]):
    """Memoised :func:`_stem`; bounded so hostile input cannot grow it without limit."""

    def __missing__(self, word: str) -> str:
        value = _stem(word)
        if len(self) < 200_000:
            self[word] = value
        return value


_STEMS = _StemCache()


def stem(word: str) -> str:
    """A light, deterministic normal form: lower case, possessive and plural removed."""
    return _STEMS[word]


def words(text: str) -> list[str]:
    """Lower-case words of ``text``: split at punctuation, symbols and spaces
    (``Jong-un`` → jong, un), apostrophes dropped."""
    return text.lower().translate(_SEPARATORS).split()


def tokens(text: str) -> list[str]:
    """Stemmed word tokens of ``text`` (see :func:`words` and :func:`stem`)."""
    return list(map(_STEMS.__getitem__, words(text)))


def phrase_key(phrase: str) -> str:
    """The normal form used to match ``phrase`` (a term, alias or exclude rule)."""
    return " ".join(tokens(phrase))


@dataclass(frozen=True, slots=True)
class SeedInfo:
    """A seed as the baseline remembers it."""

    name: str
    title: str
    sha256: str
    words: int


@dataclass(frozen=True, slots=True)
class Weighted:
    """A learned term, phrase or entity: match key, display label, weight."""

    key: str
    label: str
    weight: float


@dataclass(frozen=True)
class Baseline:
    """What Watchtower learned about the subject. Immutable and picklable.

    ``entities`` (config): canonical name → aliases; the subject concept.
    ``watch_terms`` (config): term → weight; the topic concept.
    ``exclude`` (config): phrases that veto an alert.
    ``terms``/``phrases``/``seed_entities``: learned from the seeds (see module doc).
    ``seed_vectors``: per seed, stemmed term → weight, L2-normalised.
    """

    fingerprint: str
    seeds: tuple[SeedInfo, ...]
    terms: tuple[Weighted, ...]
    phrases: tuple[Weighted, ...]
    seed_entities: tuple[Weighted, ...]
    seed_vectors: tuple[Mapping[str, float], ...]
    entities: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    watch_terms: Mapping[str, float] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()

    def describe(self, top: int = 25) -> dict[str, Any]:
        """What ``watchtower baseline`` shows: top learned terms, phrases and entities
        with weights, the configured entities/terms/excludes, and the seeds' titles."""

        def rows(items: Iterable[Weighted]) -> list[dict[str, Any]]:
            return [{"label": w.label, "weight": round(w.weight, 3)} for w in items][:top]

        return {
            "fingerprint": self.fingerprint,
            "seeds": [{"file": s.name, "title": s.title, "words": s.words} for s in self.seeds],
            "terms": rows(self.terms),
            "phrases": rows(self.phrases),
            "seed_entities": rows(self.seed_entities),
            "entities": {k: list(v) for k, v in self.entities.items()},
            "watch_terms": dict(self.watch_terms),
            "exclude": list(self.exclude),
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` reverses it."""
        return {
            "version": ALGORITHM_VERSION,
            "fingerprint": self.fingerprint,
            "seeds": [[s.name, s.title, s.sha256, s.words] for s in self.seeds],
            "terms": [[w.key, w.label, w.weight] for w in self.terms],
            "phrases": [[w.key, w.label, w.weight] for w in self.phrases],
            "seed_entities": [[w.key, w.label, w.weight] for w in self.seed_entities],
            "seed_vectors": [dict(v) for v in self.seed_vectors],
            "entities": {k: list(v) for k, v in self.entities.items()},
            "watch_terms": dict(self.watch_terms),
            "exclude": list(self.exclude),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        """Rebuild a baseline from :meth:`to_json` output (raises KeyError/TypeError/
        ValueError on a malformed document)."""
        if data.get("version") != ALGORITHM_VERSION:
            raise ValueError("baseline cache from another algorithm version")

        def ws(rows: Iterable[Sequence[Any]]) -> tuple[Weighted, ...]:
            return tuple(Weighted(str(k), str(lab), float(w)) for k, lab, w in rows)

        return cls(
            fingerprint=str(data["fingerprint"]),
            seeds=tuple(SeedInfo(str(n), str(t), str(h), int(c)) for n, t, h, c in data["seeds"]),
            terms=ws(data["terms"]),
            phrases=ws(data["phrases"]),
            seed_entities=ws(data["seed_entities"]),
            seed_vectors=tuple(
                {str(k): float(v) for k, v in vec.items()} for vec in data["seed_vectors"]
            ),
            entities={str(k): tuple(str(a) for a in v) for k, v in data["entities"].items()},
            watch_terms={str(k): float(v) for k, v in data["watch_terms"].items()},
            exclude=tuple(str(x) for x in data["exclude"]),
        )


# --------------------------------------------------------------------------- learning


def _background(word: str) -> float:
    # wordfreq is imported only when a baseline is learned (a cache miss): it costs a
    # tenth of a second and 30 MB at every start otherwise.
    from wordfreq import word_frequency

    return max(word_frequency(word, LANG), _BACKGROUND_FLOOR)


def _is_function_word(word: str) -> bool:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, LANG) >= FUNCTION_ZIPF


def _surface_forms(seeds: Sequence[Seed]) -> dict[str, str]:
    """Most common lower-case surface form of each stem (for display)."""
    forms: dict[str, Counter[str]] = {}
    for seed in seeds:
        for w in words(seed.text):
            forms.setdefault(stem(w), Counter())[w] += 1
    return {k: c.most_common(1)[0][0] for k, c in forms.items()}


def _learn_terms(counts: Counter[str], total: int, forms: Mapping[str, str]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for st, n in counts.items():
        if n < MIN_TERM_COUNT or len(st) < 2 or st.isdigit():
            continue
        surface = forms.get(st, st)
        if _is_function_word(surface):
            continue
        bg = max(_background(surface), _background(st))
        ratio = (n / total) / bg
        if ratio > 4.0:
            weights[st] = math.log2(ratio)
    return weights


def _learn_phrases(
    seed_tokens: Sequence[list[str]], term_w: Mapping[str, float], forms: Mapping[str, str]
) -> list[Weighted]:
    grams: Counter[tuple[str, ...]] = Counter()
    for toks in seed_tokens:
        for n in (2, 3):
            for i in range(len(toks) - n + 1):
                gram = tuple(toks[i : i + n])
                if _is_function_word(forms.get(gram[0], gram[0])) or _is_function_word(
                    forms.get(gram[-1], gram[-1])
                ):
                    continue
                grams[gram] += 1
    out: list[Weighted] = []
    for gram, n in grams.items():
        if n < MIN_TERM_COUNT:
            continue
        content = [term_w.get(t, 0.0) for t in gram if not _is_function_word(forms.get(t, t))]
        if not content or min(content) <= 0.0:
            continue
        weight = sum(content) / len(content)
        label = " ".join(forms.get(t, t) for t in gram)
        out.append(Weighted(" ".join(gram), label, weight))
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


def _learn_entities(seeds: Sequence[Seed]) -> list[Weighted]:
    spans: Counter[str] = Counter()
    labels: dict[str, Counter[str]] = {}
    for seed in seeds:
        for line in seed.text.splitlines():
            for m in _CAP_SPAN.finditer(line):
                span = m.group(0).strip()
                words = span.split()
                if len(words) == 1 and not (span.isupper() and len(span) >= 2):
                    continue
                key = phrase_key(span)
                if not key:
                    continue
                spans[key] += 1
                labels.setdefault(key, Counter())[span] += 1
    out: list[Weighted] = []
    total = sum(spans.values()) or 1
    for key, n in spans.items():
        if n < MIN_TERM_COUNT:
            continue
        words = key.split()
        bg = (
            min(_background(w) for w in words if not _is_function_word(w))
            if any(not _is_function_word(w) for w in words)
            else 1.0
        )
        weight = math.log2(1.0 + (n / total) / bg) / 4.0
        if weight <= 0.0:
            continue
        out.append(Weighted(key, labels[key].most_common(1)[0][0], weight))
    out.sort(key=lambda w: (-w.weight, w.key))
    return out[:MAX_SEED_ENTITIES]


def _seed_vector(
    toks: Sequence[str], term_w: Mapping[str, float], phrase_w: Mapping[str, float]
) -> dict[str, float]:
    """Sublinear tf × distinctiveness over learned terms and phrases, L2-normalised."""
    tf: Counter[str] = Counter(t for t in toks if t in term_w)
    for n in (2, 3):
        for i in range(len(toks) - n + 1):
            key = " ".join(toks[i : i + n])
            if key in phrase_w:
                tf[key] += 1
    weights = {**term_w, **phrase_w}
    vec = {t: (1.0 + math.log(n)) * weights[t] for t, n in tf.items()}
    norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
    return {t: v / norm for t, v in vec.items()}


def fingerprint(seeds: Sequence[Seed], meta_digest: str, cfg: BaselineSettings) -> str:
    """Hash of everything the baseline depends on."""
    doc = {
        "algorithm": ALGORITHM_VERSION,
        "seeds": [[s.name, s.sha256] for s in seeds],
        "meta": meta_digest,
        "terms": sorted((str(k), float(v)) for k, v in cfg.terms.items()),
        "entities": sorted((str(k), sorted(map(str, v))) for k, v in cfg.entities.items()),
        "exclude": sorted(map(str, cfg.exclude)),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def build_baseline(cfg: BaselineSettings) -> Baseline:
    """Compute the baseline from the seeds folder and config (no caching)."""
    folder = Path(cfg.seeds)
    return _build(cfg, read_seeds(folder), metadata_digest(folder))


def _build(cfg: BaselineSettings, seeds: Sequence[Seed], meta_digest: str) -> Baseline:
    _check_config(cfg)
    seed_tokens = [tokens(s.text) for s in seeds]
    counts: Counter[str] = Counter()
    for toks in seed_tokens:
        counts.update(toks)
    total = sum(counts.values()) or 1
    forms = _surface_forms(seeds)
    term_w = _learn_terms(counts, total, forms)
    terms = sorted(
        (Weighted(k, forms.get(k, k), w) for k, w in term_w.items()),
        key=lambda w: (-w.weight * math.log2(1 + counts[w.key]), w.key),
    )[:MAX_TERMS]
    vocab = {w.key: w.weight for w in terms}
    phrases = _learn_phrases(seed_tokens, term_w, forms)
    phrase_w = {p.key: p.weight for p in phrases}
    return Baseline(
        fingerprint=fingerprint(seeds, meta_digest, cfg),
        seeds=tuple(
            SeedInfo(s.name, s.title, s.sha256, len(t))
            for s, t in zip(seeds, seed_tokens, strict=True)
        ),
        terms=tuple(terms),
        phrases=tuple(phrases),
        seed_entities=tuple(_learn_entities(seeds)),
        seed_vectors=tuple(_seed_vector(t, vocab, phrase_w) for t in seed_tokens),
        entities={str(k): tuple(str(a) for a in v) for k, v in cfg.entities.items()},
        watch_terms={str(k): float(v) for k, v in cfg.terms.items()},
        exclude=tuple(str(x) for x in cfg.exclude),
    )


def _check_config(cfg: BaselineSettings) -> None:
    problems = []
    for term, weight in cfg.terms.items():
        if not phrase_key(str(term)):
            problems.append(f"baseline.terms: {term!r} has no words")
        if not (isinstance(weight, int | float) and math.isfinite(weight) and weight > 0):
            problems.append(f"baseline.terms.{term}: weight must be a positive number")
    for name, aliases in cfg.entities.items():
        for alias in [name, *aliases]:
            if not phrase_key(str(alias)):
                problems.append(f"baseline.entities.{name}: {alias!r} has no words")
    for rule in cfg.exclude:
        if not phrase_key(str(rule)):
            problems.append(f"baseline.exclude: {rule!r} has no words")
    if problems:
        raise ConfigError(problems)


# --------------------------------------------------------------------------- caching


def default_cache_path(cfg: BaselineSettings) -> Path:
    """Where the cache goes when neither ``cache_path`` nor ``baseline.cache`` is set."""
    return Path(cfg.seeds) / ".baseline-cache.json"


def _read_cache(path: Path, want: str) -> Baseline | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("fingerprint") != want:
            return None
        return Baseline.from_json(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("baseline cache %s unusable (%s); rebuilding", path, exc)
        return None


def _write_cache(path: Path, baseline: Baseline) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".baseline-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(baseline.to_json(), fh, ensure_ascii=False)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write baseline cache %s (%s); continuing without it", path, exc)


def load_baseline(cfg: BaselineSettings, *, cache_path: Path | None = None) -> Baseline:
    """The baseline for ``cfg``: from the JSON cache when its fingerprint matches the
    current seeds and config, else computed and written back.

    Cache location: ``cache_path``, else ``cfg.cache``, else
    :func:`default_cache_path`. A cache that cannot be read or written is logged and
    ignored. Raises :class:`ConfigError` for missing/unreadable seeds or bad config.
    """
    folder = Path(cfg.seeds)
    seeds = read_seeds(folder)
    meta_digest = metadata_digest(folder)
    want = fingerprint(seeds, meta_digest, cfg)
    path = cache_path or cfg.cache or default_cache_path(cfg)
    cached = _read_cache(path, want)
    if cached is not None:
        log.debug("baseline %s loaded from %s", want, path)
        return cached
    baseline = _build(cfg, seeds, meta_digest)
    log.info(
        "baseline %s built from %d seeds (%d terms, %d phrases)",
        baseline.fingerprint,
        len(baseline.seeds),
        len(baseline.terms),
        len(baseline.phrases),
    )
    _write_cache(path, baseline)
    return baseline
