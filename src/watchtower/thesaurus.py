"""A thesaurus the seeds switch on: the other concepts of the seeds' field, in English,
Korean and Chinese.

Five seed articles name some of their field's concepts (here forced repatriation,
refugees, trafficking, the UN's inquiry) but not all of them: a report of public
executions or of separated families is as much North Korean human-rights news as the
seeds are, in words the seeds never use. A thesaurus (``thesauri/*.yaml``, shipped with
Watchtower) lists a field's concepts, each with its wordings and translations; it names
no subject (no country, person or place), so it is the same for every subject in its
field.

:func:`related` decides from the topic the seeds taught whether a thesaurus applies:
when at least ``attest`` of its concepts have a form among the topic terms in effect.
Then every form of every concept that the topic does not hold yet joins it, at the
thesaurus's ``weight`` and labelled with the concept's name: the seeds' own wordings
keep their learned weights, a paraphrase or a translation of them ("sent back",
강제북송, 强制遣返) and the concepts the seeds did not mention (executions, separated
families) count as strong supporting terms. An item still needs the subject to score:
the thesaurus adds to the topic only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from watchtower.language import phrase_key

log = logging.getLogger(__name__)

FOLDER = Path(__file__).with_name("thesauri")


@dataclass(frozen=True, slots=True)
class Concept:
    """One concept of a field: its name and its forms in every language."""

    name: str
    forms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Thesaurus:
    """A field's concepts, how many of them the seeds must attest, and the weight of a
    form the seeds did not teach."""

    name: str
    attest: int
    weight: float
    concepts: tuple[Concept, ...]


def _parse(doc: object, where: Path) -> Thesaurus:
    if not isinstance(doc, dict) or not isinstance(doc.get("concepts"), dict):
        raise ValueError(f"{where}: a thesaurus is a mapping with `concepts`")
    concepts = []
    for name, langs in doc["concepts"].items():
        if not isinstance(langs, dict):
            raise ValueError(f"{where}: concept {name!r} is not a mapping of languages")
        forms = [str(f) for lang in ("en", "ko", "zh") for f in langs.get(lang) or ()]
        concepts.append(Concept(str(name), tuple(dict.fromkeys(forms))))
    return Thesaurus(
        name=str(doc.get("name", where.stem)),
        attest=int(doc.get("attest", 3)),
        weight=float(doc.get("weight", 1.5)),
        concepts=tuple(concepts),
    )


@lru_cache(maxsize=8)
def load(path: Path) -> Thesaurus:
    """Read one thesaurus file (``ValueError`` if it is malformed)."""
    import yaml  # type: ignore[import-untyped]

    return _parse(yaml.safe_load(path.read_text(encoding="utf-8")), path)


def shipped() -> list[Thesaurus]:
    """The thesauri shipped with Watchtower (a warning if the installation lacks them)."""
    found = [load(p) for p in sorted(FOLDER.glob("*.yaml"))]
    if not found:
        log.warning("no thesaurus in %s (an incomplete installation?)", FOLDER)
    return found


@lru_cache(maxsize=1)
def digest() -> str:
    """A hash of the shipped thesauri (the baseline's cache depends on them)."""
    h = hashlib.sha256()
    for p in sorted(FOLDER.glob("*.yaml")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def attested(thesaurus: Thesaurus, topic: Mapping[str, float]) -> list[str]:
    """The concepts of ``thesaurus`` with a form among ``topic`` (match key → weight in
    effect, weight above 0)."""
    return [
        c.name
        for c in thesaurus.concepts
        if any(topic.get(phrase_key(form), 0.0) > 0 for form in c.forms)
    ]


def related(
    topic: Mapping[str, float], thesauri: Iterable[Thesaurus]
) -> tuple[dict[str, tuple[str, ...]], float]:
    """The concepts that join the topic (concept name → its forms) and their weight:
    those of every thesaurus the topic attests (see the module docstring)."""
    out: dict[str, tuple[str, ...]] = {}
    weight = 0.0
    for th in thesauri:
        seen = attested(th, topic)
        if len(seen) < th.attest:
            log.debug("thesaurus %s: %d concepts attested, not applied", th.name, len(seen))
            continue
        weight = max(weight, th.weight)
        for c in th.concepts:
            out[c.name] = (*out.get(c.name, ()), *c.forms)
    return out, weight
