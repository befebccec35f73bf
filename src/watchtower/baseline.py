"""Seeds + the ``baseline:`` config → a :class:`Baseline`: what the subject looks like.

The baseline has two concepts, and an item must touch both to alert:

* the **subject** — *who or where* the news is about: the names learned from the seeds
  (:mod:`watchtower.learn`: here North Korea and its forms, Pyongyang, and with much
  less weight China and the UN), plus the configured ``entities`` (a name with its
  aliases, in any language; ``implicit`` forms such as "the North" that count only when
  a ``context`` word is present);
* the **topic** — *what about them matters*: the phrases and word families that set the
  seeds apart from general English, plus the configured ``terms`` (each with a weight
  and, in ``also``, its paraphrases and translations).

Configuration extends, re-weights or vetoes what was learned: a configured term or
entity with the same words as a learned one replaces its weight; weight 0 removes it.
``exclude`` phrases veto an item outright.

:func:`load_baseline` computes this once and caches it as JSON; the cache is keyed by
:attr:`Baseline.fingerprint`, a hash of every seed's bytes, ``seeds.yaml``, the
baseline config and the algorithm version, so editing a seed or the config rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from watchtower import thesaurus
from watchtower.errors import ConfigError
from watchtower.language import is_cjk, keys_of, phrase_key, remember_keys
from watchtower.learn import Weighted, learn, seed_vector
from watchtower.seeds import Seed, metadata_digest, read_seeds

__all__ = ["Baseline", "BaselineSettings", "SeedInfo", "Weighted", "build_baseline"]

log = logging.getLogger(__name__)

ALGORITHM_VERSION = 7  # bump whenever learning changes: it invalidates every cache
LEARNED_TOPIC_MAX = 2.0  # the most distinctive learned topic term weighs this much
LEARNED_LOW = 6.0  # log2 rate ratio below which a learned word is not topical
SINGLE_SEED = 0.5  # a learned term of one seed only (of several) counts half
MINOR_NAME = 1 / 9  # share of mentions under a third, squared (see learn.learn_names)
HEAD_SHARE = 0.25  # the head word of a compound term, alone, counts a quarter of it
LEARNED_HIGH = 10.0  # log2 rate ratio from which a learned word weighs LEARNED_TOPIC_MAX


class TermSettings(Protocol):
    @property
    def weight(self) -> float: ...
    @property
    def also(self) -> Sequence[str]: ...


class EntitySettings(Protocol):
    @property
    def aliases(self) -> Sequence[str]: ...
    @property
    def implicit(self) -> Sequence[str]: ...
    @property
    def context(self) -> Sequence[str]: ...
    @property
    def weight(self) -> float: ...


class BaselineSettings(Protocol):
    """What the baseline needs from the ``baseline:`` config section (BaselineConfig)."""

    @property
    def seeds(self) -> Path: ...
    @property
    def terms(self) -> Mapping[str, TermSettings]: ...
    @property
    def entities(self) -> Mapping[str, EntitySettings]: ...
    @property
    def exclude(self) -> Sequence[str]: ...
    @property
    def cache(self) -> Path | None: ...
    @property
    def thesaurus(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class SeedInfo:
    """A seed as the baseline remembers it."""

    name: str
    title: str
    sha256: str
    words: int


@dataclass(frozen=True, slots=True)
class Name:
    """One form of a subject name in effect: the text matched, the name it stands for."""

    form: str
    label: str
    weight: float
    implicit: bool = False  # counts only when one of the name's context words is present
    learned: bool = False


@dataclass(frozen=True, slots=True)
class Term:
    """One form of a topic term in effect: the text matched, the term it stands for."""

    form: str
    label: str
    weight: float
    learned: bool = False
    thesaurus: bool = False  # a form of a concept of the thesaurus the seeds switched on


@dataclass(frozen=True)
class Baseline:
    """What Watchtower learned about the subject. Immutable and picklable.

    Learned: ``terms``/``phrases`` (distinctive words and phrases), ``names`` (subject
    names), ``seed_vectors`` (per seed, key → weight, L2-normalised).
    Configured: ``entities`` (name → aliases), ``implicit``/``context`` (per name),
    ``entity_weights``, ``watch_terms`` (term → weight), ``term_forms`` (term →
    paraphrases and translations), ``exclude``.
    """

    fingerprint: str
    seeds: tuple[SeedInfo, ...]
    terms: tuple[Weighted, ...]
    phrases: tuple[Weighted, ...]
    names: tuple[Weighted, ...]
    seed_vectors: tuple[Mapping[str, float], ...]
    proper: frozenset[str] = frozenset()
    entities: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    implicit: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    entity_weights: Mapping[str, float] = field(default_factory=dict)
    watch_terms: Mapping[str, float] = field(default_factory=dict)
    term_forms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    keys: Mapping[str, str] = field(default_factory=dict)  # word → match key, precomputed
    related: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # thesaurus
    related_weight: float = 0.0

    def __post_init__(self) -> None:
        remember_keys(self.keys)

    # ------------------------------------------------------------------ in effect

    def subject(self) -> list[Name]:
        """Every subject name form in effect: configured entities (weight 1 unless set)
        and learned names, a configured one replacing a learned one of the same words."""
        out: dict[str, Name] = {}
        for w in self.names:
            out[w.key] = Name(w.label, w.label, w.weight, learned=True)
        for name, aliases in self.entities.items():
            weight = self.entity_weights.get(name, 1.0)
            for form in (name, *aliases):
                out[phrase_key(form)] = Name(form, name, weight)
            for form in self.implicit.get(name, ()):
                out[phrase_key(form)] = Name(form, name, weight, implicit=True)
        return [n for n in out.values() if n.weight > 0]

    def topic(self) -> list[Term]:
        """Every topic term form in effect: the most distinctive learned phrases and
        words that are not subject names (weighted up to LEARNED_TOPIC_MAX), and the
        configured terms with their forms, a configured weight replacing a learned one.
        The topic is what the seeds share, not one article's digression: a learned term
        found in one seed only (when there are several) counts SINGLE_SEED of its weight.
        The head (last word) of a learned compound, or of a plain configured one (weight
        1, no ``also`` forms: a weighted term with its wordings matches just what it
        says), counts HEAD_SHARE of the compound's weight on its own ("rights" of "human
        rights"), when the seeds use that word and it does not weigh more already."""
        out = self._learned_topic()
        learned_keys = {w.key: w.label for w in self.terms}
        heads = [(t.form, t.label, t.weight, True) for t in out.values() if t.learned]
        heads += [
            (term, term, weight, False)
            for term, weight in self.watch_terms.items()
            if weight == 1.0 and not self.term_forms.get(term)
        ]
        for form, label, weight, learned in heads:
            words_ = phrase_key(form).split()
            head = words_[-1] if len(words_) > 1 else ""
            w_head = round(HEAD_SHARE * weight, 3)
            prev = out.get(head)
            if head in learned_keys and (prev is None or (prev.learned and prev.weight < w_head)):
                out[head] = Term(learned_keys[head], label, w_head, learned)
        for term, weight in self.watch_terms.items():
            for form in (term, *self.term_forms.get(term, ())):
                out[phrase_key(form)] = Term(form, term, weight)
        self._add_related(out)
        return [t for t in out.values() if t.weight > 0]

    def _add_related(self, out: dict[str, Term]) -> None:
        """The thesaurus's forms, where neither a configured form nor a stronger learned
        one has the same words, and none lies inside them: the longest match wins, so
        "modern-day slavery" must not hide a configured "slavery" of weight 3."""
        weight = self.related_weight
        strong = [k for k, t in out.items() if not t.learned or t.weight >= weight]
        for concept, forms in self.related.items():
            for form in forms:
                k = phrase_key(form)
                prev = out.get(k)
                if prev is not None and (not prev.learned or prev.weight >= weight):
                    continue
                if _inside(k, strong):
                    continue
                out[k] = Term(form, concept, weight, thesaurus=True)

    def _learned_topic(self) -> dict[str, Term]:
        # a learned name the seeds mention less than a third as often as the main one (its
        # weight under MINOR_NAME) does not keep its words out of the topic: such an
        # initialism is an institution or an issue (UN, UNHCR, POWs); capitalised name
        # words stay out through ``proper``
        names = {
            tok
            for n in self.subject()
            if not (n.learned and n.weight < MINOR_NAME)
            for tok in phrase_key(n.form).split()
        }
        names |= self.proper
        need = min(len(self.seed_vectors), 2)
        out: dict[str, Term] = {}
        for w in (*self.phrases, *self.terms):
            if set(w.key.split()) & names:
                continue
            spread = sum(1 for vec in self.seed_vectors if w.key in vec)
            # distinctiveness (log2 of the seed/background rate ratio) mapped steeply onto
            # 0..LEARNED_TOPIC_MAX: words general news uses freely (nuclear, security,
            # council) fall below LEARNED_LOW and drop out
            x = min(1.0, max(0.0, (w.weight - LEARNED_LOW) / (LEARNED_HIGH - LEARNED_LOW)))
            share = 1.0 if spread >= need else SINGLE_SEED
            if x > 0 and spread:
                weight = round(LEARNED_TOPIC_MAX * x * x * share, 3)
                out[w.key] = Term(w.label, w.label, weight, True)
        return out

    def describe(self, top: int = 25) -> dict[str, Any]:
        """What ``watchtower baseline`` shows: the seeds, the subject and the topic in
        effect (learned and configured, with weights), the learned phrases and the
        exclude rules."""

        def rows(items: Iterable[Name] | Iterable[Term], n: int) -> list[dict[str, Any]]:
            grouped: dict[str, dict[str, Any]] = {}
            for it in items:
                row = grouped.setdefault(
                    it.label,
                    {
                        "label": it.label,
                        "weight": round(it.weight, 3),
                        "forms": [],
                        "from": _origin(it),
                    },
                )
                if it.form != it.label:
                    row["forms"].append(it.form)
            ordered = sorted(grouped.values(), key=lambda r: -float(r["weight"]))
            written = {
                **self.term_forms,
                **{k: (*v, *self.implicit.get(k, ())) for k, v in self.entities.items()},
            }
            for row in ordered:
                forms = written.get(row["label"]) if row["from"] == "config" else None
                row["forms"] = ", ".join(forms if forms is not None else row["forms"])
            return ordered[:n]

        return {
            "fingerprint": self.fingerprint,
            "seeds": [{"file": s.name, "title": s.title, "words": s.words} for s in self.seeds],
            "subject": rows(self.subject(), top),
            "topic": rows(self.topic(), top * 2),
            "learned phrases": [
                {"label": w.label, "weight": round(w.weight, 3)} for w in self.phrases[:top]
            ],
            "exclude": list(self.exclude),
        }

    # ------------------------------------------------------------------ cache form

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` reverses it."""

        def ws(items: Iterable[Weighted]) -> list[list[Any]]:
            return [[w.key, w.label, w.weight] for w in items]

        def lists(m: Mapping[str, tuple[str, ...]]) -> dict[str, list[str]]:
            return {k: list(v) for k, v in m.items()}

        return {
            "version": ALGORITHM_VERSION,
            "fingerprint": self.fingerprint,
            "seeds": [[s.name, s.title, s.sha256, s.words] for s in self.seeds],
            "terms": ws(self.terms),
            "phrases": ws(self.phrases),
            "names": ws(self.names),
            "proper": sorted(self.proper),
            "seed_vectors": [dict(v) for v in self.seed_vectors],
            "entities": lists(self.entities),
            "implicit": lists(self.implicit),
            "context": lists(self.context),
            "entity_weights": dict(self.entity_weights),
            "watch_terms": dict(self.watch_terms),
            "term_forms": lists(self.term_forms),
            "exclude": list(self.exclude),
            "keys": dict(self.keys),
            "related": lists(self.related),
            "related_weight": self.related_weight,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        """Rebuild a baseline from :meth:`to_json` output (raises KeyError/TypeError/
        ValueError on a malformed document)."""
        if data.get("version") != ALGORITHM_VERSION:
            raise ValueError("baseline cache from another algorithm version")

        def ws(rows: Iterable[Sequence[Any]]) -> tuple[Weighted, ...]:
            return tuple(Weighted(str(k), str(lab), float(w)) for k, lab, w in rows)

        def lists(m: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
            return {str(k): tuple(str(a) for a in v) for k, v in m.items()}

        return cls(
            fingerprint=str(data["fingerprint"]),
            seeds=tuple(SeedInfo(str(n), str(t), str(h), int(c)) for n, t, h, c in data["seeds"]),
            terms=ws(data["terms"]),
            phrases=ws(data["phrases"]),
            names=ws(data["names"]),
            proper=frozenset(map(str, data["proper"])),
            seed_vectors=tuple(
                {str(k): float(v) for k, v in vec.items()} for vec in data["seed_vectors"]
            ),
            entities=lists(data["entities"]),
            implicit=lists(data["implicit"]),
            context=lists(data["context"]),
            entity_weights={str(k): float(v) for k, v in data["entity_weights"].items()},
            watch_terms={str(k): float(v) for k, v in data["watch_terms"].items()},
            term_forms=lists(data["term_forms"]),
            exclude=tuple(str(x) for x in data["exclude"]),
            keys={str(k): str(v) for k, v in data["keys"].items()},
            related=lists(data["related"]),
            related_weight=float(data["related_weight"]),
        )


def _inside(key: str, keys: Sequence[str]) -> bool:
    """Whether another of ``keys`` is a part of ``key``: a run of its words, or for
    Korean and Chinese (spaces ignored) a run of its characters."""
    if is_cjk(key):
        flat = "".join(key.split())
        return any(k != flat and k in flat for k in ("".join(k.split()) for k in keys))
    padded = f" {key} "
    return any(k != key and f" {k} " in padded for k in keys)


def _origin(it: Name | Term) -> str:
    if isinstance(it, Term) and it.thesaurus:
        return "thesaurus"
    return "seeds" if it.learned else "config"


# --------------------------------------------------------------------------- building


def _settings_doc(cfg: BaselineSettings) -> dict[str, Any]:
    return {
        "terms": sorted(
            (str(k), float(v.weight), sorted(map(str, v.also))) for k, v in cfg.terms.items()
        ),
        "entities": sorted(
            (
                str(k),
                sorted(map(str, v.aliases)),
                sorted(map(str, v.implicit)),
                sorted(map(str, v.context)),
                float(v.weight),
            )
            for k, v in cfg.entities.items()
        ),
        "exclude": sorted(map(str, cfg.exclude)),
    }


def fingerprint(seeds: Sequence[Seed], meta_digest: str, cfg: BaselineSettings) -> str:
    """Hash of everything the baseline depends on."""
    doc = {
        "algorithm": ALGORITHM_VERSION,
        "seeds": [[s.name, s.sha256] for s in seeds],
        "meta": meta_digest,
        "thesaurus": thesaurus.digest() if cfg.thesaurus else None,
        **_settings_doc(cfg),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def build_baseline(cfg: BaselineSettings) -> Baseline:
    """Compute the baseline from the seeds folder and config (no caching)."""
    folder = Path(cfg.seeds)
    return build_from(cfg, read_seeds(folder), metadata_digest(folder))


def build_from(cfg: BaselineSettings, seeds: Sequence[Seed], meta_digest: str) -> Baseline:
    """The baseline of ``seeds`` (read before) and ``cfg``."""
    _check_config(cfg)
    learned = learn(seeds)
    vocab = {w.key: w.weight for w in learned.terms}
    phrase_w = {p.key: p.weight for p in learned.phrases}
    if not learned.terms:
        log.warning(
            "the seeds in %s teach no distinctive words (are they English prose?); "
            "only the configured terms and entities will match",
            cfg.seeds,
        )
    baseline = Baseline(
        fingerprint=fingerprint(seeds, meta_digest, cfg),
        seeds=tuple(
            SeedInfo(s.name, s.title, s.sha256, len(t))
            for s, t in zip(seeds, learned.seed_tokens, strict=True)
        ),
        terms=learned.terms,
        phrases=learned.phrases,
        names=learned.names,
        proper=learned.proper,
        seed_vectors=tuple(seed_vector(t, vocab, phrase_w) for t in learned.seed_tokens),
        entities={str(k): tuple(map(str, v.aliases)) for k, v in cfg.entities.items()},
        implicit={str(k): tuple(map(str, v.implicit)) for k, v in cfg.entities.items()},
        context={str(k): tuple(map(str, v.context)) for k, v in cfg.entities.items()},
        entity_weights={str(k): float(v.weight) for k, v in cfg.entities.items()},
        watch_terms={str(k): float(v.weight) for k, v in cfg.terms.items()},
        term_forms={str(k): tuple(map(str, v.also)) for k, v in cfg.terms.items()},
        exclude=tuple(str(x) for x in cfg.exclude),
        keys=keys_of(_forms(cfg, learned.names, learned.terms, learned.phrases)),
    )
    return _with_thesaurus(baseline) if cfg.thesaurus else baseline


def _with_thesaurus(baseline: Baseline) -> Baseline:
    """``baseline`` with the concepts of every shipped thesaurus its topic attests."""
    topic = {phrase_key(t.form): t.weight for t in baseline.topic()}
    related, weight = thesaurus.related(topic, thesaurus.shipped())
    forms = [form for group in related.values() for form in group]
    return replace(
        baseline,
        related=related,
        related_weight=weight,
        keys={**baseline.keys, **keys_of([*related, *forms])},
    )


def _forms(cfg: BaselineSettings, *learned: Iterable[Weighted]) -> list[str]:
    """Every text the matcher's tables are built from: configured terms, names and
    rules with all their forms, and the labels of what was learned."""
    out = [text for group in learned for w in group for text in (w.label, w.key)]
    for term, spec in cfg.terms.items():
        out.extend((term, *spec.also))
    for name, ent in cfg.entities.items():
        out.extend((name, *ent.aliases, *ent.implicit, *ent.context))
    out.extend(cfg.exclude)
    return out


def _check_config(cfg: BaselineSettings) -> None:
    problems = []
    for term, spec in cfg.terms.items():
        for form in (term, *spec.also):
            if not phrase_key(str(form)):
                problems.append(f"baseline.terms: {form!r} has no words")
        weight = spec.weight
        if not (isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0):
            problems.append(f"baseline.terms.{term}: weight must be a number ≥ 0")
    for name, ent in cfg.entities.items():
        for alias in [name, *ent.aliases, *ent.implicit, *ent.context]:
            if not phrase_key(str(alias)):
                problems.append(f"baseline.entities.{name}: {alias!r} has no words")
    for rule in cfg.exclude:
        if not phrase_key(str(rule)):
            problems.append(f"baseline.exclude: {rule!r} has no words")
    if problems:
        raise ConfigError(problems)
