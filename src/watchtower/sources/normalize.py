"""Normalising untrusted web text and links: shared by every source kind.

* :func:`canonical_url` — only http(s); lower-case scheme and host; no fragment, no
  default port, no tracking parameters (``utm_*``, ``fbclid``…); query sorted.
* :func:`html_to_text` — HTML (or plain text) to whitespace-normalised plain text.
* :func:`stable_guid` — an entry's id: its guid, else its canonical link, else a hash
  of title and summary (feeds without ``<guid>`` exist).
* :func:`newest_indices` / :func:`note_truncation` — which items of an over-long feed
  to keep (the newest, whatever the feed's order), and its once-per-source log line.
* :class:`DateGuard` — keeps entry dates inside the range every time zone can show
  (see :mod:`watchtower.timeutil`), dropping the others with one log line per document.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from watchtower.timeutil import representable

log = logging.getLogger(__name__)

_TRACKING = re.compile(
    r"^(utm_[a-z_]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|yclid|_hsenc|_hsmi"
    r"|ref|ref_src|cmpid|ocid|src|at_medium|at_campaign|smid|taid)$",
    re.IGNORECASE,
)
_ABSOLUTE = re.compile(r"https?://[^/\\]", re.IGNORECASE)  # scheme and a host
_WS = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANKS = re.compile(r"\n\s*\n+")
_BLOCK_TAGS = (
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "section",
    "article",
    "blockquote",
    "pre",
    "header",
    "footer",
    "dd",
    "dt",
    "figcaption",
)
_DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "object", "svg", "head")


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical http(s) form of ``url`` (resolved against ``base``), or None."""
    if not url:
        return None
    url = url.strip()
    if base and not _ABSOLUTE.match(url):  # an absolute link needs no join (most do not)
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    default = {"http": 80, "https": 443}[scheme]
    netloc = host if port in (None, default) else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" if port in (None, default) else f"[{host}]:{port}"
    query = parts.query and urlencode(
        sorted(
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)
        )
    )
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def normalize_text(text: str) -> str:
    """NFC, collapsed spaces, at most one blank line between paragraphs, trimmed."""
    text = unicodedata.normalize("NFC", text).replace("\x00", "")
    lines = [_WS.sub(" ", line).strip() for line in text.splitlines()]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(html: str | None) -> str:
    """Plain text of an HTML fragment (or of plain text): scripts and styles dropped,
    block elements on lines of their own. lxml's HTML parser does the work (a tenth of
    BeautifulSoup's cost per field, which mattered: feeds have many fields).
    """
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return normalize_text(html)
    import lxml.html  # type: ignore[import-untyped]  # here: config checks need no lxml
    from lxml import etree

    try:
        root = lxml.html.fragment_fromstring(html.replace("\x00", ""), create_parent="div")
    except (etree.ParserError, ValueError):
        return normalize_text(html)
    etree.strip_elements(
        root, *_DROP_TAGS, etree.Comment, etree.ProcessingInstruction, with_tail=False
    )
    for element in root.iter(*_BLOCK_TAGS, "br"):
        element.tail = "\n" + (element.tail or "")
        if element.tag != "br":
            element.text = "\n" + (element.text or "")
    return normalize_text(root.text_content())


def stable_guid(guid: str | None, link: str | None, title: str, summary: str) -> str:
    """An entry id that stays the same across polls of the same source."""
    if guid and guid.strip():
        return guid.strip()[:1000]
    canon = canonical_url(link)
    if canon:
        return canon
    digest = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    return f"sha256:{digest[:32]}"


class DateGuard:
    """Checks the dates of one parsed document; call :meth:`report` when done.

    :meth:`check` returns a date as aware UTC, or ``None`` when it lies outside the
    range every time zone can represent (``31 Dec 9999``, year 1) or could not be
    built at all (:meth:`reject`). :meth:`report` logs one WARNING naming the source,
    how many dates were dropped and the first of them, and nothing when none were.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.dropped = 0
        self._example = ""

    def check(self, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        safe = representable(value)
        if safe is None:
            self.reject(value.isoformat())
        return safe

    def reject(self, raw: str) -> None:
        self.dropped += 1
        if not self._example:
            self._example = raw[:64]

    def report(self) -> None:
        if self.dropped:
            log.warning(
                "%s: %d entry dates outside the years every time zone can show (first: %s);"
                " those dates are dropped",
                self.source,
                self.dropped,
                self._example,
            )


#: How many source names :func:`note_truncation` remembers (then it starts afresh).
MAX_TRUNCATED_NAMES = 10_000
_truncated: set[str] = set()
_OLDEST = datetime.min.replace(tzinfo=UTC)


def newest_indices(dates: Sequence[datetime | None], cap: int) -> list[int]:
    """Indices of the at most ``cap`` newest items, in document order.

    ``dates[i]`` is item ``i``'s date (aware) or ``None``. All fit: every index. Else
    dated items come first, newest first (a later position wins a tie), then undated
    items taken from the end of the document. The result is sorted (document order
    is kept).
    """
    if len(dates) <= cap:
        return list(range(len(dates)))
    ranked = sorted(
        range(len(dates)),
        key=lambda i: (dates[i] is not None, dates[i] or _OLDEST, i),
        reverse=True,
    )
    return sorted(ranked[: max(cap, 0)])


def note_truncation(source: str, total: int, kept: int) -> None:
    """Log once per source (per process) that a feed was cut to its newest items.

    Later polls of the same source log at DEBUG only. The memory of names is bounded
    by :data:`MAX_TRUNCATED_NAMES`.
    """
    if source in _truncated:
        log.debug("%s: feed has %d entries, keeping the newest %d", source, total, kept)
        return
    if len(_truncated) >= MAX_TRUNCATED_NAMES:
        _truncated.clear()
    _truncated.add(source)
    log.warning(
        "%s: feed has %d entries, more than the %d read per poll; keeping the newest"
        " (logged once per source)",
        source,
        total,
        kept,
    )
