"""Full text for truncated entries: fetch the linked document, read its main text.

Many feeds carry a title and a one-line teaser; the matcher then scores one sentence.
For a source with ``full_text: true``, the pipeline calls :func:`fetch_full_text` on
each new entry after parsing and before scoring.

**The rule** (:func:`needs_full_text`): an entry is short, and its link is fetched, when

* it has an http(s) link, and is a feed item or a new link on a page (never a page's
  own change entry, whose link is the watched page itself); and
* its own text (summary and content, the title left out) has fewer than
  :data:`MIN_WORDS` words, **or** it ends like a teaser: ``Read more``, ``Continue
  reading``, ``Read the full story``, ``[more]``, ``More »``, ``…``, ``...`` or ``[…]``.

The document is fetched with the caller's :class:`~watchtower.fetch.Fetcher` (its
address policy, total-time and size caps and per-host politeness apply; no
conditional GET). HTML is reduced to its main text with the extractor pages use, a PDF
is read by :mod:`watchtower.sources.pdf`; both in a bounded parse worker
(:mod:`watchtower.sources.article`).

:func:`fetch_full_text` never raises for a failed fetch or an unreadable document: it
returns a :class:`FullText` whose ``status`` is ``fetched`` (a new entry whose
``content`` is the document's text, the summary kept, plus the
:class:`~watchtower.models.FetchedDocument` to archive), ``skipped`` (the entry is
long enough), or ``failed`` (the original entry and a plain-words ``reason``; the
``document`` too when it was fetched but could not be read). Cancellation propagates.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from watchtower.errors import FetchError, ParseError
from watchtower.models import Entry, FetchedDocument, FetchResult

log = logging.getLogger(__name__)

#: An entry with fewer words than this of its own (title left out) is short.
MIN_WORDS = 50
#: What the fetch asks for: articles and PDFs.
DOCUMENT_ACCEPT = (
    "text/html, application/xhtml+xml;q=0.9, application/pdf;q=0.9, text/plain;q=0.5, */*;q=0.1"
)
_TEASER = re.compile(
    r"(?:read\s+more|continue\s+reading|read\s+the\s+full\s+(?:story|article)"
    r"|\[\s*more\s*\]|more\s*[»›→]|…|\.\.\.|\[\s*(?:…|\.\.\.)\s*\])[\s\W]*$",
    re.IGNORECASE,
)

Status = Literal["fetched", "skipped", "failed"]


class DocumentFetcher(Protocol):
    """What fetching a document needs: :meth:`watchtower.fetch.Fetcher.fetch`."""

    async def fetch(self, url: str, *, accept: str = ...) -> FetchResult: ...


@dataclass(frozen=True, slots=True)
class FullText:
    """What :func:`fetch_full_text` did for one entry.

    ``entry`` is the entry to score and store: with the document's text as ``content``
    when ``status == "fetched"``, else the original. ``document`` is what was fetched
    (for the archive), ``reason`` why nothing was used, ``notes`` what the PDF reader
    said (``read the first 150 of 500 pages``).
    """

    entry: Entry
    status: Status
    document: FetchedDocument | None = None
    reason: str | None = None
    notes: tuple[str, ...] = ()


def own_text(entry: Entry) -> str:
    """The entry's text without a copy of its title at the start."""
    text = entry.text.strip()
    title = entry.title.strip()
    if title and text.casefold().startswith(title.casefold()):
        text = text[len(title) :].strip()
    return text


def is_teaser(text: str) -> bool:
    """True when ``text`` ends like a teaser ("Read more", "…", "[...]")."""
    return bool(_TEASER.search(text[-200:]))


def needs_full_text(entry: Entry, *, min_words: int = MIN_WORDS) -> bool:
    """The rule of the module docstring: is this entry's own text too short to score?"""
    if not entry.url:
        return False
    if entry.kind == "page" and entry.guid != entry.url:
        return False  # a page's own change: its link is the watched page
    text = own_text(entry)
    return len(text.split()) < min_words or is_teaser(text)


async def fetch_full_text(
    entry: Entry,
    fetcher: DocumentFetcher,
    *,
    parse_timeout: float,
    parse_memory: int,
    min_words: int = MIN_WORDS,
    force: bool = False,
) -> FullText:
    """Fetch and read ``entry``'s linked document when the entry is short (or ``force``).

    ``parse_timeout`` / ``parse_memory`` bound the worker that reads the document
    (``fetch.parse_timeout`` and ``fetch.parse_memory``). Never raises but for
    cancellation; see the module docstring for the outcomes.
    """
    if entry.url is None or not (force or needs_full_text(entry, min_words=min_words)):
        return FullText(entry, "skipped")
    fetched_at = datetime.now(UTC)
    try:
        result = await fetcher.fetch(entry.url, accept=DOCUMENT_ACCEPT)
    except FetchError as exc:
        return _failed(entry, f"full text not fetched: {exc.reason}")
    except Exception as exc:  # a bug must not fail the source: score on what the feed gave
        log.warning("%s: full text fetch of %s failed", entry.source, entry.url, exc_info=True)
        return _failed(entry, f"full text not fetched: {type(exc).__name__}")
    document = FetchedDocument.of(result, fetched_at)
    from watchtower.sources.article import extract_article_in_worker

    try:
        article = await extract_article_in_worker(
            result, entry.source, timeout=parse_timeout, memory=parse_memory
        )
    except ParseError as exc:
        return _failed(entry, f"full text not read: {exc.reason}", document)
    except Exception as exc:
        log.warning("%s: reading %s failed", entry.source, entry.url, exc_info=True)
        return _failed(entry, f"full text not read: {type(exc).__name__}", document)
    if article.words <= len(own_text(entry).split()):
        return _failed(entry, "the linked document has no more text than the entry", document)
    log.debug("%s: full text of %s: %d words", entry.source, entry.url, article.words)
    full = dataclasses.replace(entry, content=article.text)
    return FullText(full, "fetched", document, None, article.notes)


async def fetch_full_texts(
    entries: Sequence[Entry],
    fetcher: DocumentFetcher,
    *,
    parse_timeout: float,
    parse_memory: int,
    min_words: int = MIN_WORDS,
    concurrency: int = 4,
) -> list[FullText]:
    """:func:`fetch_full_text` for each of ``entries``, at most ``concurrency`` at a time.

    Results are in the order of ``entries``. The Fetcher's per-host limits still apply
    (documents on one host are fetched ``per_host_interval`` apart).
    """
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(entry: Entry) -> FullText:
        async with gate:
            return await fetch_full_text(
                entry,
                fetcher,
                parse_timeout=parse_timeout,
                parse_memory=parse_memory,
                min_words=min_words,
            )

    return list(await asyncio.gather(*(one(entry) for entry in entries)))


def _failed(entry: Entry, reason: str, document: FetchedDocument | None = None) -> FullText:
    log.info("%s: %s (%s)", entry.source, reason, entry.url)
    return FullText(entry, "failed", document, reason)
