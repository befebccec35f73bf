"""Choose the parser for a fetched source and run it in a bounded worker process.

* ``feed:`` sources are RSS/Atom (feedparser) or JSON Feed, decided by the answer;
* ``page:`` sources are parsed against their previous snapshot (``sources.page``).

Both run through :mod:`watchtower.sources.worker`, so a hostile body can only kill a
worker, never the daemon.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watchtower.dedupe import signature
from watchtower.models import Entry, FetchResult, ScoredEntry
from watchtower.sources import worker
from watchtower.sources.jsonfeed import looks_like_json_feed
from watchtower.sources.page import PageParse, parse_page

worker.register_parser("jsonfeed", "watchtower.sources.jsonfeed:parse_json_feed")
worker.register_parser("page", "watchtower.sources.dispatch:parse_page_job")
worker.register_parser("scored", "watchtower.sources.dispatch:parse_scored_job")

_SCORERS: dict[str, Any] = {}  # worker side: the scorer of the running config, by token


@dataclass(frozen=True, slots=True)
class ScorerRef:
    """A scorer shipped to parse workers: pickled once, unpickled once per worker.

    Scoring and near-duplicate signatures then run beside parsing, across the worker
    processes, instead of on the daemon's event loop.
    """

    token: str
    blob: bytes

    @classmethod
    def of(cls, scorer: Any) -> ScorerRef:
        return cls(uuid.uuid4().hex, pickle.dumps(scorer, pickle.HIGHEST_PROTOCOL))

    def load(self) -> Any:
        scorer = _SCORERS.get(self.token)
        if scorer is None:
            _SCORERS.clear()  # a reload replaced the previous scorer
            scorer = _SCORERS[self.token] = pickle.loads(self.blob)
        return scorer


def parse_scored_job(
    kind: str, result: FetchResult, source: str, ref: ScorerRef
) -> list[ScoredEntry]:
    """Worker-side: parse with the ``kind`` parser, then score and sign every entry."""
    entries: list[Entry] = worker.resolve_parser(kind)(result, source)
    scorer = ref.load()
    scored = []
    for entry in entries:
        text = entry.text
        scored.append(
            ScoredEntry(entry, scorer.score(entry.title, text), signature(entry.title, text))
        )
    return scored


@dataclass(frozen=True, slots=True)
class PageOptions:
    """What a page parse needs besides the fetched answer."""

    select: str | None = None
    exclude_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    previous: str | None = None


def feed_kind(result: FetchResult) -> str:
    """``jsonfeed`` for a JSON Feed answer, else ``feed`` (RSS / Atom)."""
    return "jsonfeed" if looks_like_json_feed(result) else "feed"


async def parse_and_score_in_worker(
    result: FetchResult, source: str, ref: ScorerRef, *, timeout: float, memory: int
) -> list[ScoredEntry]:
    """Parse a feed answer (RSS, Atom or JSON Feed) and score its entries in a worker."""
    scored = await worker.run_in_worker(
        "scored",
        (feed_kind(result), result, source, ref),
        source,
        timeout=timeout,
        memory=memory,
    )
    return list(scored)


def parse_page_job(result: FetchResult, source: str, options: PageOptions) -> PageParse:
    """Worker-side entry point for pages (registered as parser kind ``page``)."""
    return parse_page(
        result,
        source=source,
        select=options.select,
        exclude_select=options.exclude_select,
        ignore=options.ignore,
        previous=options.previous,
    )


async def parse_page_in_worker(
    result: FetchResult,
    source: str,
    *,
    select: str | None,
    exclude_select: Sequence[str],
    ignore: Sequence[str],
    previous: str | None,
    timeout: float,
    memory: int,
) -> PageParse:
    options = PageOptions(select, tuple(exclude_select), tuple(ignore), previous)
    parsed = await worker.run_in_worker(
        "page", (result, source, options), source, timeout=timeout, memory=memory
    )
    if not isinstance(parsed, PageParse):
        raise TypeError(f"page parser returned {type(parsed).__name__}")
    return parsed
