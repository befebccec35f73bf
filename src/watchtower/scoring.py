"""The score stage: an :class:`Entry` becomes a :class:`ScoredEntry`, one way for every source.

:func:`score_entry` is the only place an entry is scored: the scorer rates its title and
text (``Entry.text``) and the entry gets its near-duplicate signature
(:func:`watchtower.dedupe.signature`) for story assignment, and its explanation's JSON
text (what the store keeps, encoded here so that a worker, not the store, pays for it).
Feeds and pages alike are scored with it, and only after the entries already stored
were dropped.

:func:`score_in_worker` runs it in a parse worker process (the scorer is shipped there
once per configuration through a :class:`ScorerRef`), so scoring a large batch never
blocks the daemon's event loop. :func:`parse_and_score_in_worker` parses and scores in
one job, for a source with nothing stored yet (its first poll): every entry is new, so
dropping the stored ones may as well come after scoring.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from watchtower.dedupe import signature
from watchtower.models import Entry, FetchResult, Score, ScoredEntry
from watchtower.sources import worker


class Scorer(Protocol):
    """Anything that scores a title and body in [0, 1] with an explanation."""

    def score(self, title: str, text: str) -> Score: ...


def score_entry(scorer: Scorer, entry: Entry) -> ScoredEntry:
    """``entry`` with ``scorer``'s score of its title and text, and its story signature."""
    text = entry.text
    score = scorer.score(entry.title, text)
    encoded = score.explanation.to_json()
    return ScoredEntry(entry, score, signature(entry.title, text), encoded)


def score_entries(scorer: Scorer, entries: Sequence[Entry]) -> list[ScoredEntry]:
    """:func:`score_entry` for each entry, in order."""
    return [score_entry(scorer, entry) for entry in entries]


_SCORERS: dict[str, Any] = {}  # worker side: the scorer of the running config, by token


@dataclass(frozen=True, slots=True)
class ScorerRef:
    """A scorer shipped to parse workers: pickled once, unpickled once per worker."""

    token: str
    blob: bytes

    @classmethod
    def of(cls, scorer: Scorer) -> ScorerRef:
        return cls(uuid.uuid4().hex, pickle.dumps(scorer, pickle.HIGHEST_PROTOCOL))

    def load(self) -> Scorer:
        scorer = _SCORERS.get(self.token)
        if scorer is None:
            _SCORERS.clear()  # a reload replaced the previous scorer
            scorer = _SCORERS[self.token] = pickle.loads(self.blob)
        return scorer  # type: ignore[no-any-return]


def score_job(entries: Sequence[Entry], ref: ScorerRef) -> list[ScoredEntry]:
    """Worker side of :func:`score_in_worker` (registered as worker kind ``score``)."""
    return score_entries(ref.load(), entries)


def parse_and_score_job(
    parser: str, result: FetchResult, source: str, ref: ScorerRef
) -> list[ScoredEntry]:
    """Worker side of :func:`parse_and_score_in_worker` (worker kind ``parse+score``);
    ``parser`` is the parser's path (:func:`watchtower.sources.worker.parser_path`)."""
    return score_entries(ref.load(), worker.load_parser(parser)(result, source))


worker.register_parser("score", "watchtower.scoring:score_job", preload=True)
worker.register_parser("parse+score", "watchtower.scoring:parse_and_score_job", preload=True)


async def score_in_worker(
    entries: Sequence[Entry], ref: ScorerRef, source: str, *, timeout: float, memory: int
) -> list[ScoredEntry]:
    """:func:`score_entries` with the scorer behind ``ref``, in a worker process.

    Same limits and errors as parsing (:func:`watchtower.sources.worker.run_in_worker`).
    """
    if not entries:
        return []
    scored = await worker.run_in_worker(
        "score", (list(entries), ref), source, timeout=timeout, memory=memory
    )
    return list(scored)


async def parse_and_score_in_worker(
    kind: str, result: FetchResult, ref: ScorerRef, source: str, *, timeout: float, memory: int
) -> list[ScoredEntry]:
    """Parse a feed answer with the parser of ``kind`` and score every entry, in ONE
    worker job: for a source with nothing stored yet, where every entry is new, this
    saves shipping the entries back and forth between parsing and scoring.

    Same limits and errors as parsing; the two steps share ``timeout``.
    """
    scored = await worker.run_in_worker(
        "parse+score",
        (worker.parser_path(kind), result, source, ref),
        source,
        timeout=timeout,
        memory=memory,
    )
    return list(scored)
