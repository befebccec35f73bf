"""Full text of truncated entries, fetched from a real loopback server."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pdfgen import report_pdf
from tests.support import LoopbackHTTP, Response, trickle
from watchtower.archive import Archive
from watchtower.fetch import Fetcher
from watchtower.fulltext import (
    FullText,
    fetch_full_text,
    fetch_full_texts,
    is_teaser,
    needs_full_text,
)
from watchtower.models import Entry, FetchResult
from watchtower.sources.article import extract_article

MB = 1024 * 1024
STORY = (
    "Chinese authorities forcibly returned some sixty North Korean escapees across the "
    "border this week, according to rights groups who documented the transfers. Those "
    "repatriated face interrogation, torture and detention in political prison camps, "
    "the groups said, urging Beijing to respect the principle of non-refoulement."
)
ARTICLE = f"""<!DOCTYPE html><html><head><title>Escapees forcibly returned</title></head>
<body><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>
<header>Daily Example — subscribe now</header>
<main><article><h1>Escapees forcibly returned</h1>
<p>{STORY}</p>
<p>The United Nations special rapporteur called the repatriation a grave violation of
international law and asked for access to those detained after their return.</p>
</article></main>
<footer>Copyright Daily Example. Cookie settings. Most read: football scores.</footer>
</body></html>""".encode()
REPORT = [
    "Report of the Special Rapporteur on the situation of human rights in the DPRK.",
    "The forced repatriation of escapees exposes them to torture and arbitrary detention. " * 3,
]


@pytest.fixture(scope="module")
def srv() -> Iterator[LoopbackHTTP]:
    with LoopbackHTTP() as server:
        server.routes["/article"] = Response(200, {"Content-Type": "text/html"}, ARTICLE)
        server.routes["/report.pdf"] = Response(
            200, {"Content-Type": "application/pdf"}, report_pdf(REPORT, title="A/HRC/58/XX")
        )
        server.routes["/image"] = Response(200, {"Content-Type": "image/png"}, b"\x89PNG....")
        server.routes["/big"] = Response(200, {"Content-Type": "text/html"}, b"<p>x</p>" * 50_000)
        yield server


def teaser(url: str, summary: str = "Rights groups report new returns. Read more…") -> Entry:
    return Entry(source="Example feed", guid=url, title="Border news", url=url, summary=summary)


def full_text(entry: Entry, **fetch: Any) -> FullText:
    opts: dict[str, Any] = {
        "timeout": 5.0,
        "max_bytes": MB,
        "allow_private": True,
        "contact": None,
        "per_host_interval": 0.0,
    }
    opts.update(fetch)

    async def go() -> FullText:
        async with Fetcher(**opts) as fetcher:
            return await fetch_full_text(entry, fetcher, parse_timeout=30, parse_memory=512 * MB)

    return asyncio.run(go())


# --- the rule ---------------------------------------------------------------------------------


def test_the_short_entry_rule() -> None:
    url = "https://news.example/a"
    assert needs_full_text(teaser(url, "One line about something."))
    long = " ".join(["word"] * 80)
    assert not needs_full_text(teaser(url, long))
    assert needs_full_text(teaser(url, long + " Read more"))
    assert needs_full_text(teaser(url, long + " […]"))
    assert needs_full_text(teaser(url, long + " Continue reading →"))
    assert not needs_full_text(teaser(url, long + " and prices rose more."))
    title_only = Entry(source="s", guid=url, title="A " * 60, url=url, summary="A " * 60)
    assert needs_full_text(title_only), "the title repeated as summary is no text of its own"
    assert not needs_full_text(Entry(source="s", guid="g", title="t", summary="short"))
    change = Entry(source="s", guid="page-change:ab", title="t", url=url, kind="page")
    assert not needs_full_text(change)
    link = Entry(source="s", guid=url, title="New report", url=url, kind="page")
    assert needs_full_text(link)
    assert is_teaser("The story so far...") and not is_teaser("A full sentence.")


def test_long_entry_is_not_fetched(srv: LoopbackHTTP) -> None:
    entry = teaser(srv.url("/article"), " ".join(["word"] * 80))
    before = len(srv.requests_to("/article"))
    result = full_text(entry)
    assert result.status == "skipped" and result.entry is entry and result.document is None
    assert len(srv.requests_to("/article")) == before


# --- documents ----------------------------------------------------------------------------------


def test_html_article_main_text_replaces_the_teaser(srv: LoopbackHTTP, tmp_path: Path) -> None:
    entry = teaser(srv.url("/article"))
    result = full_text(entry)
    assert result.status == "fetched" and result.reason is None
    assert result.entry.summary == entry.summary and result.entry.title == entry.title
    assert "forcibly returned some sixty North Korean escapees" in result.entry.content
    assert "non-refoulement" in result.entry.text
    for boilerplate in ("subscribe now", "Cookie settings", "football"):
        assert boilerplate not in result.entry.content
    doc = result.document
    assert doc is not None and doc.url == srv.url("/article") and doc.status == 200
    assert doc.headers["content-type"] == "text/html"
    assert doc.payload == ARTICLE and doc.sha256 == hashlib.sha256(ARTICLE).hexdigest()
    request = srv.requests_to("/article")[-1]
    assert "text/html" in request.headers["accept"]
    assert "if-none-match" not in request.headers and "if-modified-since" not in request.headers
    # The fetched bytes are what the archive keeps, with the same SHA-256.
    record = Archive(tmp_path).write(doc).record
    assert record is not None and record.sha256 == hashlib.sha256(ARTICLE).hexdigest()


def test_pdf_report_text(srv: LoopbackHTTP) -> None:
    result = full_text(teaser(srv.url("/report.pdf"), "New report published."))
    assert result.status == "fetched"
    assert "forced repatriation of escapees" in result.entry.content
    assert result.document is not None and result.document.payload.startswith(b"%PDF-")


def test_missing_document_keeps_the_entry_and_says_why(srv: LoopbackHTTP) -> None:
    entry = teaser(srv.url("/gone"))
    result = full_text(entry)
    assert result.status == "failed" and result.entry is entry and result.document is None
    assert result.reason == "full text not fetched: HTTP 404 Not Found"


def test_slow_document_times_out(srv: LoopbackHTTP) -> None:
    srv.routes["/slow"] = lambda req: Response(
        200, {"Content-Type": "text/html"}, trickle(ARTICLE[:200], 0.2)
    )
    entry = teaser(srv.url("/slow"))
    result = full_text(entry, timeout=1.0)
    assert result.status == "failed" and result.entry is entry
    assert result.reason == "full text not fetched: timeout after 1 s"


def test_oversize_document_is_refused(srv: LoopbackHTTP) -> None:
    result = full_text(teaser(srv.url("/big")), max_bytes=100_000)
    assert result.status == "failed"
    assert result.reason == "full text not fetched: body over 100 kB"


def test_unreadable_document_is_reported_with_what_was_fetched(srv: LoopbackHTTP) -> None:
    entry = teaser(srv.url("/image"))
    result = full_text(entry)
    assert result.status == "failed" and result.entry is entry
    assert result.reason == "full text not read: not a web page: image/png"
    assert result.document is not None and result.document.payload == b"\x89PNG...."


def test_extract_article_routes_pdf_by_magic() -> None:
    body = report_pdf(REPORT)
    answer = FetchResult("https://e.example/doc", 200, body, {"content-type": "binary/octet"})
    article = extract_article(answer)
    assert article.kind == "pdf" and "arbitrary detention" in article.text


def test_batch_keeps_order_and_isolates_failures(srv: LoopbackHTTP) -> None:
    entries = [
        teaser(srv.url("/gone")),
        teaser(srv.url("/article")),
        teaser(srv.url("/image")),
        teaser(srv.url("/article"), " ".join(["word"] * 80)),
    ]

    async def go() -> list[FullText]:
        async with Fetcher(
            timeout=5, max_bytes=MB, allow_private=True, contact=None, per_host_interval=0
        ) as fetcher:
            return await fetch_full_texts(
                entries, fetcher, parse_timeout=30, parse_memory=512 * MB, concurrency=2
            )

    results = asyncio.run(go())
    assert [r.status for r in results] == ["failed", "fetched", "failed", "skipped"]
    assert [r.entry.guid for r in results] == [e.guid for e in entries]
