"""A linked document (an article or a PDF) → its main text, in a bounded parse worker.

:func:`extract_article` reads one fetched document:

* a PDF (by Content-Type or ``%PDF-`` magic) with :func:`watchtower.sources.pdf.extract_pdf_text`;
* anything else as a web page, with the extractor ``page:`` sources use
  (:func:`watchtower.sources.page.parse_page` without a selector: trafilatura's main
  text, tuned for precision, else the page's main region without navigation).

It raises :class:`~watchtower.errors.ParseError` (``not a web page: image/png``, ``no
readable text on the page``, the PDF reasons…). :func:`extract_article_in_worker` runs
it as parser kind ``article`` in the workers of :mod:`watchtower.sources.worker`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from watchtower.errors import ParseError
from watchtower.models import FetchResult
from watchtower.sources import worker
from watchtower.sources.diff import load_snapshot
from watchtower.sources.page import parse_page
from watchtower.sources.pdf import extract_pdf_text, looks_like_pdf

#: At most this many characters of a document become an entry's text.
MAX_ARTICLE_CHARS = 100_000

worker.register_parser("article", "watchtower.sources.article:extract_article")


@dataclass(frozen=True, slots=True)
class ArticleText:
    """The main text of a document: lines joined by ``\\n``; ``notes`` from the PDF reader."""

    text: str
    kind: Literal["html", "pdf"]
    notes: tuple[str, ...] = ()

    @property
    def words(self) -> int:
        return len(self.text.split())


def extract_article(result: FetchResult) -> ArticleText:
    """The main text of a fetched article or PDF. Raises :class:`ParseError`."""
    if result.not_modified:
        raise ParseError("nothing to read: the server answered 304 Not Modified")
    if looks_like_pdf(result):
        pdf = extract_pdf_text(result.body)
        return ArticleText(pdf.text[:MAX_ARTICLE_CHARS], "pdf", pdf.notes)
    page = parse_page(result, source=result.url)
    lines = load_snapshot(page.snapshot).lines
    return ArticleText("\n".join(lines)[:MAX_ARTICLE_CHARS], "html")


async def extract_article_in_worker(
    result: FetchResult, source: str, *, timeout: float, memory: int
) -> ArticleText:
    """:func:`extract_article` in a parse worker (``timeout`` s, ``memory`` bytes)."""
    value = await worker.run_in_worker("article", (result,), source, timeout=timeout, memory=memory)
    if not isinstance(value, ArticleText):
        raise TypeError(f"article parser returned {type(value).__name__}")
    return value
