"""PDF documents: fetched bytes → plain text, and PDF ``page:`` sources watched like pages.

The library is pypdf (BSD licence, pure Python, so no native code parses hostile
bytes) rather than pdfminer.six: it has per-stream output limits for every
decompression filter, a cap on the decoding work per stream, and repairs broken
cross-reference tables by scanning the file.

:func:`extract_pdf_text` is the core. It runs under these bounds, and every way a PDF
can fail ends in :class:`~watchtower.errors.PdfError` with a plain-words ``reason``:

* a body that is not a PDF (an HTML error page served as ``application/pdf``):
  ``not a PDF: the body is an HTML page``;
* a compression bomb: no stream may inflate past :data:`MAX_STREAM_BYTES`
  (``a PDF stream inflates past 16 MB (a compression bomb?)``), so memory stays small;
* a broken cross-reference table is repaired when the objects can be found (the
  result's ``notes`` say so), else ``damaged PDF that cannot be repaired: …``;
* an encrypted file is opened with the empty user password (permission-only
  encryption is common on official documents), else ``the PDF is password-protected``;
* a long document is read up to :data:`MAX_PAGES` pages, :data:`MAX_CHARS` characters
  and :data:`TIME_BUDGET` seconds; the result says ``truncated`` and why in ``notes``;
* a PDF of scanned images has no text: ``no text in the PDF (scanned pages? …)``.

Run it in the bounded parse workers (:mod:`watchtower.sources.worker`, kinds
``pdf`` and ``pdf_page``) so that memory (``RLIMIT_AS``) and time are bounded too:
:func:`extract_pdf_in_worker` and :func:`parse_pdf_page_in_worker`.

A ``page:`` source that serves a PDF (:func:`looks_like_pdf`) is watched by
:func:`parse_pdf_page`: the snapshot is the extracted text, one line per text line, and
later polls yield one entry with the added lines, exactly as
:func:`watchtower.sources.page.parse_page` does for HTML.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import time
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pypdf
from pypdf.errors import DependencyError, LimitReachedError, PyPdfError

from watchtower.errors import ParseError, PdfError
from watchtower.models import Entry, FetchResult
from watchtower.sources import worker
from watchtower.sources.diff import compile_ignore, diff_lines, dump_snapshot, load_snapshot
from watchtower.sources.normalize import canonical_url
from watchtower.sources.page import MAX_DIFF_LINES, MAX_SUMMARY_CHARS, PageParse

log = logging.getLogger(__name__)

#: Bodies above this many bytes are refused rather than parsed.
MAX_PDF_BYTES = 50_000_000
#: No stream (page content, font, image) may decode to more than this.
MAX_STREAM_BYTES = 16 * 1024 * 1024
#: Reading stops after this many pages, characters of text, or seconds.
MAX_PAGES = 150
MAX_CHARS = 400_000
TIME_BUDGET = 15.0
MAX_LINE_CHARS = 5_000

PDF_TYPES = frozenset(("application/pdf", "application/x-pdf", "application/acrobat"))
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]")

worker.register_parser("pdf", "watchtower.sources.pdf:extract_pdf_job")
worker.register_parser("pdf_page", "watchtower.sources.pdf:parse_pdf_page_job")


@dataclass(frozen=True, slots=True)
class PdfText:
    """The text of a PDF and how much of it was read.

    ``text`` is one whitespace-normalised line per text line (``\\n``-separated);
    ``pages`` is the document's page count, ``pages_read`` how many were read;
    ``truncated`` is true when a cap stopped reading early. ``notes`` are plain
    sentences for the record (``read the first 150 of 500 pages``, repairs made).
    """

    text: str
    title: str
    pages: int
    pages_read: int
    truncated: bool = False
    notes: tuple[str, ...] = ()

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(self.text.split("\n")) if self.text else ()


@dataclass(frozen=True, slots=True)
class PdfPageParse(PageParse):
    """A :class:`PageParse` of a PDF ``page:`` source, plus the extraction notes."""

    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PdfPageOptions:
    """What a PDF page parse needs besides the fetched answer (picklable for workers)."""

    ignore: tuple[str, ...] = ()
    previous: str | None = None
    default_ignore: bool = True
    select: str | None = None


def looks_like_pdf(result: FetchResult) -> bool:
    """True when the answer is labelled as a PDF or its body starts like one.

    The ``%PDF-`` header may follow a little junk (readers look in the first 1024
    bytes), except in an answer labelled HTML, where it must come first.
    """
    ctype = result.content_type.split(";")[0].strip().lower()
    if ctype in PDF_TYPES:
        return True
    at = result.body[:1024].find(b"%PDF-")
    return at == 0 or (at > 0 and "html" not in ctype)


def _describe(body: bytes) -> str:
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        return "empty"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<body" in head:
        return "an HTML page"
    if head.startswith(b"<"):
        return "XML or HTML"
    if head.startswith((b"{", b"[")):
        return "JSON"
    if head.startswith((b"\x1f\x8b", b"pk\x03\x04")):
        return "a compressed archive"
    return "not a PDF file"


def _short(text: object, limit: int = 100) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


class _Collect(logging.Handler):
    """Collects pypdf's repair warnings (``incorrect startxref pointer``…) as notes."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = _short(record.getMessage(), 80)
        if message not in self.messages and len(self.messages) < 5:
            self.messages.append(message)


@contextmanager
def _bounded() -> Iterator[_Collect]:
    """pypdf limits for hostile files, its warnings collected instead of logged."""
    pypdf_log = logging.getLogger("pypdf")
    handler = _Collect()
    propagate = pypdf_log.propagate
    pypdf_log.addHandler(handler)
    pypdf_log.propagate = False
    try:
        with (
            warnings.catch_warnings(),
            pypdf.apply_configuration(
                maximum_declared_stream_length=MAX_PDF_BYTES,
                array_based_stream_maximum_output_length=MAX_STREAM_BYTES,
                zlib_maximum_output_length=MAX_STREAM_BYTES,
                lzw_maximum_output_length=MAX_STREAM_BYTES,
                run_length_maximum_output_length=MAX_STREAM_BYTES,
                brotli_maximum_output_length=MAX_STREAM_BYTES,
                jbig2_maximum_output_length=MAX_STREAM_BYTES,
                image_maximum_buffer_size=MAX_STREAM_BYTES,
                stream_decoding_work_maximum_length=4 * MAX_STREAM_BYTES,
                jbig2dec_binary=None,  # never run an external decoder on hostile bytes
            ),
        ):
            warnings.simplefilter("ignore")
            yield handler
    finally:
        pypdf_log.removeHandler(handler)
        pypdf_log.propagate = propagate


def _bomb() -> PdfError:
    return PdfError(
        f"a PDF stream inflates past {MAX_STREAM_BYTES // (1024 * 1024)} MB (a compression bomb?)"
    )


def _open(body: bytes) -> pypdf.PdfReader:
    try:
        reader = pypdf.PdfReader(io.BytesIO(body), strict=False)
    except LimitReachedError as exc:
        raise _bomb() from exc
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise PdfError(f"damaged PDF that cannot be repaired: {_short(exc)}") from exc
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except DependencyError as exc:
            raise PdfError("the PDF uses an encryption this installation cannot read") from exc
        except (PyPdfError, NotImplementedError, ValueError, KeyError, TypeError) as exc:
            raise PdfError(f"the PDF's encryption cannot be read: {_short(exc)}") from exc
        if not opened:
            raise PdfError("the PDF is password-protected: its text cannot be read")
    return reader


def _clean_lines(raw: str) -> list[str]:
    raw = unicodedata.normalize("NFC", raw)
    out = []
    for line in raw.splitlines():
        line = _SPACE.sub(" ", _CONTROL.sub(" ", line)).strip()
        if line:
            out.append(line[:MAX_LINE_CHARS])
    return out


def _title(reader: pypdf.PdfReader) -> str:
    try:
        meta = reader.metadata
        title = meta.title if meta is not None else None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    return _SPACE.sub(" ", str(title or "")).strip()[:300]


def extract_pdf_text(
    body: bytes,
    *,
    max_pages: int = MAX_PAGES,
    max_chars: int = MAX_CHARS,
    time_budget: float = TIME_BUDGET,
) -> PdfText:
    """The text of the PDF ``body``, within the caps above. Raises :class:`PdfError`.

    Call it in a parse worker (kind ``pdf``): the caps bound the work, the worker's
    address-space limit bounds what they do not foresee.
    """
    if len(body) > MAX_PDF_BYTES:
        raise PdfError(f"PDF too large to read: {len(body)} bytes (limit {MAX_PDF_BYTES})")
    if b"%PDF-" not in body[:1024]:
        raise PdfError(f"not a PDF: the body is {_describe(body)}")
    with _bounded() as repairs:
        reader = _open(body)
        reading = _Reading(max_pages, max_chars, time.monotonic() + time_budget, time_budget)
        reading.read(reader)
        title = _title(reader)
    notes = [reading.stop] if reading.stop else []
    if reading.failed:
        notes.append(f"{reading.failed} page{'s' if reading.failed > 1 else ''} could not be read")
    if repairs.messages:
        notes.append("damaged file repaired: " + "; ".join(repairs.messages[:3]))
    if not reading.lines:
        if reading.count and reading.failed == min(reading.count, max_pages):
            raise PdfError("damaged PDF: none of its pages can be read")
        raise PdfError("no text in the PDF (scanned pages? text recognition is not done)")
    return PdfText(
        "\n".join(reading.lines),
        title,
        reading.count,
        reading.pages_read,
        reading.stop is not None,
        tuple(notes),
    )


class _Reading:
    """Reads pages in order until a cap stops it; ``stop`` says which cap, if any."""

    def __init__(self, max_pages: int, max_chars: int, deadline: float, budget: float) -> None:
        self.max_pages, self.max_chars = max_pages, max_chars
        self.deadline, self.budget = deadline, budget
        self.lines: list[str] = []
        self.chars = self.count = self.pages_read = self.failed = 0
        self.stop: str | None = None

    def read(self, reader: pypdf.PdfReader) -> None:
        try:
            self.count = len(reader.pages)
        except LimitReachedError as exc:
            raise PdfError(f"the PDF's page tree is too large: {_short(exc)}") from exc
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PdfError(f"damaged PDF: its pages cannot be found ({_short(exc)})") from exc
        for index in range(self.count):
            if index >= self.max_pages:
                self.stop = f"read the first {self.max_pages} of {self.count} pages"
                return
            if index and time.monotonic() > self.deadline:  # the first page is always read
                self.stop = f"read {index} of {self.count} pages in the {self.budget:g} s allowed"
                return
            try:
                text = reader.pages[index].extract_text() or ""
            except LimitReachedError as exc:
                raise _bomb() from exc
            except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
                self.failed += 1
                log.debug("PDF page %d unreadable: %s", index + 1, exc)
                continue
            self.pages_read += 1
            if not self._take(_clean_lines(text), index):
                return

    def _take(self, lines: list[str], index: int) -> bool:
        for line in lines:
            if self.chars + len(line) > self.max_chars:
                self.stop = (
                    f"read the first {self.max_chars} characters "
                    f"({index + 1} of {self.count} pages)"
                )
                return False
            self.lines.append(line)
            self.chars += len(line) + 1
        return True


# --- PDF page sources ---------------------------------------------------------------------


def parse_pdf_page(
    result: FetchResult,
    *,
    source: str,
    ignore: Sequence[str] = (),
    previous: str | None = None,
    default_ignore: bool = True,
    select: str | None = None,
) -> PdfPageParse:
    """A ``page:`` source that serves a PDF: its text is the snapshot, added lines the change.

    The same contract as :func:`watchtower.sources.page.parse_page` (first poll: no
    entries; later: one entry with the added lines, guid ``page-change:<hash>``).
    A ``select`` (CSS selector) cannot apply to a PDF and is refused. Raises
    :class:`PdfError` (a :class:`~watchtower.errors.ParseError`).
    """
    if result.not_modified:
        raise PdfError("nothing to parse: the server answered 304 Not Modified")
    if select:
        raise PdfError(f"selector {select!r} cannot apply: the page is a PDF")
    patterns = compile_ignore(ignore, defaults=default_ignore)
    pdf = extract_pdf_text(result.body)
    lines = pdf.lines
    snapshot = dump_snapshot(lines, [])
    page_hash = hashlib.sha256(snapshot.encode("utf-8", "surrogatepass")).hexdigest()
    if not previous:
        return PdfPageParse((), snapshot, page_hash, (), pdf.notes)
    change = diff_lines(load_snapshot(previous).lines, lines, patterns)
    entries: tuple[Entry, ...] = ()
    if change.added:
        digest = hashlib.sha256("\n".join(change.added_keys).encode()).hexdigest()
        added = change.added
        entries = (
            Entry(
                source=source,
                guid=f"page-change:{digest[:32]}",
                title=pdf.title or added[0][:200],
                url=canonical_url(result.url) or result.url,
                summary="\n".join(added)[:MAX_SUMMARY_CHARS],
                kind="page",
                diff=tuple(line[:1000] for line in added[:MAX_DIFF_LINES]),
            ),
        )
    return PdfPageParse(entries, snapshot, page_hash, change.removed, pdf.notes)


# --- worker jobs and their async callers ---------------------------------------------------


def extract_pdf_job(body: bytes) -> PdfText:
    """Worker-side entry point of kind ``pdf``."""
    return extract_pdf_text(body)


def parse_pdf_page_job(result: FetchResult, source: str, options: PdfPageOptions) -> PdfPageParse:
    """Worker-side entry point of kind ``pdf_page``."""
    return parse_pdf_page(
        result,
        source=source,
        ignore=options.ignore,
        previous=options.previous,
        default_ignore=options.default_ignore,
        select=options.select,
    )


async def extract_pdf_in_worker(
    body: bytes, source: str, *, timeout: float, memory: int
) -> PdfText:
    """:func:`extract_pdf_text` in a parse worker bounded by ``timeout`` s and ``memory`` bytes.

    Raises :class:`PdfError` with the reason (the worker's own ``parser exceeded 30 s``
    or ``parser ran out of memory`` included).
    """
    try:
        value = await worker.run_in_worker("pdf", (body,), source, timeout=timeout, memory=memory)
    except PdfError:
        raise
    except ParseError as exc:  # the worker's ParseError: same reason, the PDF type
        raise PdfError(exc.reason) from exc
    if not isinstance(value, PdfText):
        raise TypeError(f"PDF parser returned {type(value).__name__}")
    return value


async def parse_pdf_page_in_worker(
    result: FetchResult,
    source: str,
    *,
    ignore: Sequence[str] = (),
    previous: str | None = None,
    select: str | None = None,
    timeout: float,
    memory: int,
) -> PdfPageParse:
    """:func:`parse_pdf_page` in a bounded parse worker; raises :class:`PdfError`."""
    options = PdfPageOptions(tuple(ignore), previous, select=select)
    try:
        value = await worker.run_in_worker(
            "pdf_page", (result, source, options), source, timeout=timeout, memory=memory
        )
    except PdfError:
        raise
    except ParseError as exc:  # the worker's ParseError: same reason, the PDF type
        raise PdfError(exc.reason) from exc
    if not isinstance(value, PdfPageParse):
        raise TypeError(f"PDF page parser returned {type(value).__name__}")
    return value
