"""PDF text extraction: good files, hostile files, and PDF ``page:`` sources, in workers too."""

from __future__ import annotations

import asyncio
import io
import os
import tracemalloc
from collections.abc import Iterator

import pypdf
import pytest

from tests.pdfgen import make_pdf, report_pdf, zlib_bomb
from tests.support import ROOT, LoopbackHTTP, Response
from watchtower.errors import ParseError, PdfError
from watchtower.fetch import Fetcher
from watchtower.models import FetchResult
from watchtower.sources import pdf as pdfmod
from watchtower.sources.page import PageParse
from watchtower.sources.pdf import (
    PdfText,
    extract_pdf_in_worker,
    extract_pdf_text,
    looks_like_pdf,
    parse_pdf_page,
    parse_pdf_page_in_worker,
)
from watchtower.sources.worker import (
    DEFAULT_WORKERS,
    PARSERS,
    register_parser,
    set_worker_count,
)

MB = 1024 * 1024
PARSE_MEMORY = 512_000_000  # fetch.parse_memory's default
REPORT = [
    "Report of the Special Rapporteur on the situation of human rights in the "
    "Democratic People's Republic of Korea.",
    "The Special Rapporteur is alarmed by the forced repatriation of escapees "
    "from China, who face torture and detention on return.",
]


def _status(field: str) -> int:
    """``VmHWM`` (peak resident) or ``VmPeak`` (peak address space) of this process, bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


def peak_job(body: bytes) -> tuple[str, int, int]:
    """Worker-side (kind ``pdf_peak``): the extraction's outcome and the worker's peaks."""
    try:
        outcome = extract_pdf_text(body).title
    except PdfError as exc:
        outcome = exc.reason
    return outcome, _status("VmHWM"), _status("VmPeak")


@pytest.fixture(scope="module")
def one_worker() -> Iterator[None]:
    """A fresh single-worker pool that can import this module."""
    saved_env = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT)
    saved = dict(PARSERS)
    register_parser("pdf_peak", "tests.sources.test_pdf_parse:peak_job")
    set_worker_count(1)
    yield
    set_worker_count(DEFAULT_WORKERS)
    PARSERS.clear()
    PARSERS.update(saved)
    if saved_env is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved_env


def answer(body: bytes, ctype: str = "application/pdf") -> FetchResult:
    return FetchResult(
        url="https://ohchr.example/report.pdf",
        status=200,
        body=body,
        headers={"content-type": ctype},
    )


def reason(body: bytes, **kw: int) -> str:
    with pytest.raises(PdfError) as err:
        extract_pdf_text(body, **kw)
    assert isinstance(err.value, ParseError)
    return err.value.reason


def encrypted(user_password: str, algorithm: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(report_pdf(REPORT))))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- good files ---------------------------------------------------------------------------


def test_text_title_and_pages_of_a_report() -> None:
    result = extract_pdf_text(report_pdf(REPORT, title="A/HRC/58/XX"))
    assert isinstance(result, PdfText)
    assert result.title == "A/HRC/58/XX"
    assert result.pages == result.pages_read == 2 and not result.truncated
    assert "forced repatriation of escapees" in " ".join(result.lines)
    assert result.lines[0].startswith("Report of the Special Rapporteur")


def test_pdf_is_recognised_by_type_or_magic() -> None:
    assert looks_like_pdf(answer(b"anything", "application/pdf; qs=0.1"))
    assert looks_like_pdf(answer(make_pdf([["x"]]), "application/octet-stream"))
    assert not looks_like_pdf(answer(b"<html></html>", "text/html"))
    assert not looks_like_pdf(answer(b"<html><p>Save as %PDF-1.7</p></html>", "text/html"))
    assert looks_like_pdf(answer(b"\r\n" + make_pdf([["x"]]), "text/plain"))


def test_owner_only_encryption_is_read() -> None:
    for algorithm in ("RC4-128", "AES-128"):
        assert "forced repatriation" in extract_pdf_text(encrypted("", algorithm)).text


# --- hostile files ----------------------------------------------------------------------------


def test_html_served_as_pdf_is_refused_in_plain_words() -> None:
    body = b"<!DOCTYPE html><html><body>Access denied</body></html>"
    assert reason(body) == "not a PDF: the body is an HTML page"
    assert reason(b"") == "not a PDF: the body is empty"


def test_compression_bomb_is_refused_with_little_memory() -> None:
    bomb = make_pdf([["x"]], extra_stream=zlib_bomb(1024**3))  # 1 GiB of zeros in ~1 MB
    assert len(bomb) < 2 * MB
    tracemalloc.start()
    try:
        why = reason(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert why == "a PDF stream inflates past 16 MB (a compression bomb?)"
    assert peak < 4 * pdfmod.MAX_STREAM_BYTES


def test_compression_bomb_in_a_worker_stays_under_the_memory_limit(one_worker: None) -> None:
    bomb = make_pdf([["x"]], extra_stream=zlib_bomb(1024**3))
    outcome, resident, address_space = asyncio.run(
        pdfmod.worker.run_in_worker("pdf_peak", (bomb,), "bomb", timeout=30, memory=PARSE_MEMORY)
    )
    assert outcome == "a PDF stream inflates past 16 MB (a compression bomb?)"
    # The worker sets RLIMIT_AS to the parse memory limit for the job; the peaks of
    # its whole life (imports included) stay under it, the resident peak far under.
    assert address_space < PARSE_MEMORY
    assert resident < PARSE_MEMORY // 2
    with pytest.raises(PdfError, match="compression bomb"):
        asyncio.run(extract_pdf_in_worker(bomb, "bomb", timeout=30, memory=PARSE_MEMORY))


def test_broken_cross_reference_table_is_repaired_and_said() -> None:
    body = make_pdf([REPORT[1:]], xref_offset=10)
    result = extract_pdf_text(body)
    assert "forced repatriation" in result.text
    assert any(note.startswith("damaged file repaired") for note in result.notes)


def test_pdf_damaged_beyond_repair_gives_a_reason() -> None:
    body = make_pdf([REPORT])
    assert reason(body[: len(body) // 3]).startswith("damaged PDF")
    assert reason(b"%PDF-1.7\n" + b"\x00garbage" * 200).startswith("damaged PDF")


def test_password_protected_pdf_gives_a_reason() -> None:
    for algorithm in ("RC4-128", "AES-256"):
        assert reason(encrypted("secret", algorithm)) == (
            "the PDF is password-protected: its text cannot be read"
        )


def test_five_hundred_pages_are_capped_and_the_cap_is_said() -> None:
    pages = [[f"Page {i} of the annex."] + [f"Line {j} of page {i}." for j in range(20)]
             for i in range(500)]  # fmt: skip
    result = extract_pdf_text(make_pdf(pages))
    assert result.pages == 500 and result.pages_read == pdfmod.MAX_PAGES
    assert result.truncated
    assert result.notes[0] == f"read the first {pdfmod.MAX_PAGES} of 500 pages"
    assert result.lines[-1] == f"Line 19 of page {pdfmod.MAX_PAGES - 1}."
    short = extract_pdf_text(make_pdf(pages[:5]), max_chars=300)
    assert short.truncated and len(short.text) <= 300
    assert short.notes[0].startswith("read the first 300 characters")


def test_time_budget_stops_reading_and_says_so() -> None:
    pages = [[f"Page {i} text."] for i in range(5)]
    result = extract_pdf_text(make_pdf(pages), time_budget=0.0)
    assert result.pages_read == 1 and result.truncated and result.text == "Page 0 text."
    assert result.notes[0] == "read 1 of 5 pages in the 0 s allowed"


def test_pdf_without_text_says_so() -> None:
    assert reason(make_pdf([[]])).startswith("no text in the PDF")


# --- PDF page sources ---------------------------------------------------------------------


def test_pdf_page_snapshot_then_added_text() -> None:
    first = parse_pdf_page(answer(report_pdf(REPORT[:1], title="Index")), source="OHCHR")
    assert isinstance(first, PageParse)
    assert first.entries == () and "Special Rapporteur" in first.snapshot
    same = parse_pdf_page(
        answer(report_pdf(REPORT[:1], title="Index")), source="OHCHR", previous=first.snapshot
    )
    assert same.entries == () and same.page_hash == first.page_hash
    later = parse_pdf_page(
        answer(report_pdf(REPORT, title="Index")), source="OHCHR", previous=first.snapshot
    )
    (entry,) = later.entries
    assert entry.kind == "page" and entry.title == "Index" and entry.source == "OHCHR"
    assert entry.url == "https://ohchr.example/report.pdf"
    assert entry.guid.startswith("page-change:")
    assert "forced repatriation" in entry.summary
    assert all("Report of the Special Rapporteur" not in line for line in entry.diff)
    with pytest.raises(PdfError, match="selector 'main' cannot apply: the page is a PDF"):
        parse_pdf_page(answer(report_pdf(REPORT)), source="OHCHR", select="main")


def test_pdf_page_through_the_worker(one_worker: None) -> None:
    async def go() -> tuple[PageParse, PageParse]:
        kw = {"timeout": 30.0, "memory": PARSE_MEMORY}
        first = await parse_pdf_page_in_worker(answer(report_pdf(REPORT[:1])), "OHCHR", **kw)
        later = await parse_pdf_page_in_worker(
            answer(report_pdf(REPORT)), "OHCHR", previous=first.snapshot, **kw
        )
        return first, later

    first, later = asyncio.run(go())
    assert first.entries == ()
    (entry,) = later.entries
    assert "forced repatriation" in entry.summary
    with pytest.raises(PdfError, match="not a PDF: the body is an HTML page"):
        asyncio.run(
            parse_pdf_page_in_worker(
                answer(b"<html><body>Not found</body></html>"), "OHCHR", timeout=30, memory=MB * 512
            )
        )


def test_pdf_page_source_over_http(one_worker: None, http_server: LoopbackHTTP) -> None:
    """A ``page:`` URL serving a PDF, fetched twice: the second poll reports the added text."""
    versions = [report_pdf(REPORT[:1], title="Reports"), report_pdf(REPORT, title="Reports")]
    http_server.routes["/reports.pdf"] = lambda req: Response(
        200, {"Content-Type": "application/pdf"}, versions[min(len(http_server.requests) - 1, 1)]
    )

    async def poll(previous: str | None) -> PageParse:
        async with Fetcher(
            timeout=5, max_bytes=MB, allow_private=True, contact=None, per_host_interval=0
        ) as fetcher:
            result = await fetcher.fetch(http_server.url("/reports.pdf"))
        assert looks_like_pdf(result)
        return await parse_pdf_page_in_worker(
            result, "UN reports", previous=previous, timeout=30, memory=PARSE_MEMORY
        )

    first = asyncio.run(poll(None))
    second = asyncio.run(poll(first.snapshot))
    assert first.entries == ()
    (entry,) = second.entries
    assert entry.url == http_server.url("/reports.pdf") and entry.title == "Reports"
    assert "forced repatriation of escapees" in entry.summary
