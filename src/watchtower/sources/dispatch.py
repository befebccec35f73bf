"""Choose the parser for a fetched source and run it in a bounded worker process.

* ``feed:`` sources are RSS/Atom (feedparser) or JSON Feed, decided by the answer;
* ``page:`` sources are parsed against their previous snapshot (``sources.page``);
  a page that answers with a PDF (:func:`watchtower.sources.pdf.looks_like_pdf`) is
  read by ``sources.pdf`` instead and watched the same way (a snapshot of its text, a
  diff of added lines), and a hostile PDF ends in ``PdfError`` with its reason.

Both run through :mod:`watchtower.sources.worker`, so a hostile body can only kill a
worker, never the daemon. Parsing only: entries are scored later, once the ones already
stored were dropped (:mod:`watchtower.scoring`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watchtower.models import Entry, FetchResult
from watchtower.sources import worker
from watchtower.sources.jsonfeed import looks_like_json_feed

if TYPE_CHECKING:
    from watchtower.sources.page import PageParse

# Every kind is registered by path, so worker processes preload its module, while this
# process imports the page, PDF and article parsers (lxml, trafilatura, pypdf…) only
# when a page source or a full-text fetch first needs them.
worker.register_parser("jsonfeed", "watchtower.sources.jsonfeed:parse_json_feed")
worker.register_parser("page", "watchtower.sources.dispatch:parse_page_job")
worker.register_parser("article", "watchtower.sources.article:extract_article")
worker.register_parser("pdf", "watchtower.sources.pdf:extract_pdf_job")
worker.register_parser("pdf_page", "watchtower.sources.pdf:parse_pdf_page_job")


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


async def parse_feed_in_worker(
    result: FetchResult, source: str, *, timeout: float, memory: int
) -> list[Entry]:
    """Parse a feed answer (RSS, Atom or JSON Feed) into entries in a worker."""
    entries = await worker.run_in_worker(
        feed_kind(result), (result, source), source, timeout=timeout, memory=memory
    )
    return list(entries)


def parse_page_job(result: FetchResult, source: str, options: PageOptions) -> PageParse:
    """Worker-side entry point for pages (registered as parser kind ``page``)."""
    from watchtower.sources.page import parse_page

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
    """Parse a page answer against ``previous`` in a worker; a PDF answer as a PDF page."""
    from watchtower.sources.page import PageParse
    from watchtower.sources.pdf import looks_like_pdf, parse_pdf_page_in_worker

    if looks_like_pdf(result):
        return await parse_pdf_page_in_worker(
            result,
            source,
            ignore=ignore,
            previous=previous,
            select=select,
            timeout=timeout,
            memory=memory,
        )
    options = PageOptions(select, tuple(exclude_select), tuple(ignore), previous)
    parsed = await worker.run_in_worker(
        "page", (result, source, options), source, timeout=timeout, memory=memory
    )
    if not isinstance(parsed, PageParse):
        raise TypeError(f"page parser returned {type(parsed).__name__}")
    return parsed
