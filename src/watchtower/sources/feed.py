"""Feed bytes → entries: RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and CDF, via feedparser.

The body is untrusted, so:

* feedparser only ever sees the bytes, wrapped in ``io.BytesIO`` (a body that is a
  file path or a URL is never opened), with the response's Content-Type,
  Content-Location and Content-Language so encoding detection and relative links
  are right;
* every ``<!ENTITY …>`` declaration is stripped before parsing (in any of the
  ASCII-compatible, UTF-16 or UTF-32 encodings), so neither external entities (XXE)
  nor a large internal entity repeated thousands of times can expand;
* ``bozo`` alone is not fatal; a document that yields no feed and no entries is a
  :class:`ParseError` with a short reason (``empty document``, ``not a feed: HTML
  page``, ``not a feed: malformed XML at line 3: mismatched tag``);
* every text field is reduced to plain text (scripts and tags dropped), links are
  canonical http(s) or ``None`` (``javascript:`` is dropped), entries and field
  lengths are capped.

Run it in a worker process (:mod:`watchtower.sources.worker`) to bound its memory and
time; it is pure and does no I/O.
"""

from __future__ import annotations

import io
import logging
import re
import time
import xml.sax
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import feedparser

from watchtower.errors import ParseError
from watchtower.models import Entry, FetchResult
from watchtower.sources.normalize import (
    DateGuard,
    canonical_url,
    html_to_text,
    newest_indices,
    note_truncation,
    stable_guid,
)

log = logging.getLogger(__name__)

MAX_ENTRIES = 500
MAX_TITLE = 1_000
MAX_SUMMARY = 20_000
MAX_CONTENT = 200_000
_RAW_FACTOR = 4  # raw HTML kept before conversion, relative to the text cap

_WIDE_CODECS = ("utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be")
_ENTITY_BYTES = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ENTITY_TEXT = re.compile(r"<!ENTITY", re.IGNORECASE)
_DECL_TOKEN_BYTES = re.compile(rb"[\"'>]")
_DECL_TOKEN_TEXT = re.compile(r"[\"'>]")
_HTML_SNIFF = re.compile(rb"<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.IGNORECASE)
_FEED_SNIFF = re.compile(rb"<(?:\w+:)?(?:rss|feed|rdf|channel)[\s>]", re.IGNORECASE)

AnyStr = TypeVar("AnyStr", str, bytes)


def _strip_decls(data: AnyStr, opener: re.Pattern[AnyStr], token: re.Pattern[AnyStr]) -> AnyStr:
    """``data`` without ``<!ENTITY …>`` declarations (quote-aware, linear time)."""
    match = opener.search(data)
    if match is None:
        return data
    parts: list[AnyStr] = []
    pos = 0
    while match is not None:
        parts.append(data[pos : match.start()])
        k = match.end()
        while True:
            tok = token.search(data, k)
            if tok is None:
                raise ParseError("malformed entity declaration refused")
            ch = data[tok.start() : tok.start() + 1]
            if ch in (">", b">"):
                pos = tok.end()
                break
            close = data.find(ch, tok.end())
            if close < 0:
                raise ParseError("malformed entity declaration refused")
            k = close + 1
        match = opener.search(data, pos)
    parts.append(data[pos:])
    return data[:0].join(parts)


def strip_entity_declarations(body: bytes) -> bytes:
    """``body`` with every ``<!ENTITY`` declaration removed (UTF-8/16/32 or 8-bit).

    Raises :class:`ParseError` for an unterminated declaration.
    """
    stripped = _strip_decls(body, _ENTITY_BYTES, _DECL_TOKEN_BYTES)
    for codec in _WIDE_CODECS:
        if "<!".encode(codec) in stripped:
            text = stripped.decode(codec, "replace")
            clean = _strip_decls(text, _ENTITY_TEXT, _DECL_TOKEN_TEXT)
            if clean != text:
                stripped = clean.encode(codec, "replace")
            break
    if len(stripped) != len(body):
        log.debug("stripped entity declarations (%d bytes)", len(body) - len(stripped))
    return stripped


def _looks_like_html(body: bytes) -> bool:
    head = body[:4096]
    return bool(_HTML_SNIFF.search(head)) and not _FEED_SNIFF.search(head)


def _bozo_reason(exc: object) -> str:
    if isinstance(exc, xml.sax.SAXParseException):
        return f"malformed XML at line {exc.getLineNumber()}: {exc.getMessage()}"[:160]
    if exc is None:
        return "no feed found"
    text = " ".join(str(exc).split())[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _text(value: object, cap: int) -> str:
    if not isinstance(value, str) or not value:
        return ""
    text = html_to_text(value[: cap * _RAW_FACTOR])
    return text[:cap].rstrip()


def _content(entry: Mapping[str, Any]) -> str:
    parts = entry.get("content") or []
    values = [p.get("value", "") for p in parts if isinstance(p, Mapping)]
    html = [
        p.get("value", "") for p in parts if isinstance(p, Mapping) and "html" in p.get("type", "")
    ]
    chosen = html or values
    return "\n\n".join(v for v in chosen if isinstance(v, str))


def _link(entry: Mapping[str, Any], base: str | None) -> str | None:
    candidates: list[object] = [entry.get("link")]
    for link in entry.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel", "alternate") == "alternate":
            candidates.append(link.get("href"))
    guid = entry.get("id")
    if entry.get("guidislink") or (isinstance(guid, str) and guid.startswith("http")):
        candidates.append(guid)
    for cand in candidates:
        if isinstance(cand, str):
            url = canonical_url(cand, base=base)
            if url:
                return url
    return None


def _published(entry: Mapping[str, Any], guard: DateGuard) -> datetime | None:
    """The entry's first usable date; one outside the representable range is dropped."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: feedparser's own get() maps a missing updated_* to published_* (and warns)
        value = dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)
        if isinstance(value, time.struct_time):
            try:
                when = datetime(*value[:6], tzinfo=UTC)
            except (ValueError, OverflowError):
                guard.reject(f"{value.tm_year:04d}-{value.tm_mon:02d}-{value.tm_mday:02d}")
                continue
            safe = guard.check(when)
            if safe is not None:
                return safe
    return None


def _entry(
    raw: Mapping[str, Any], source: str, base: str | None, published: datetime | None
) -> Entry:
    title = _text(raw.get("title"), MAX_TITLE)
    summary = _text(raw.get("summary"), MAX_SUMMARY)
    content = _text(_content(raw), MAX_CONTENT)
    if content == summary:
        content = ""
    link = _link(raw, base)
    guid_raw = raw.get("id")
    guid = stable_guid(guid_raw if isinstance(guid_raw, str) else None, link, title, summary)
    if not title:
        title = (summary or content).split("\n", 1)[0][:120]
    return Entry(
        source=source,
        guid=guid,
        title=title,
        url=link,
        summary=summary,
        content=content,
        published=published,
        kind="feed",
    )


def _base(result: FetchResult) -> str | None:
    """The URL relative links of the feed resolve against."""
    return result.headers.get("content-location") or result.url or None


def _response_headers(result: FetchResult, body: bytes) -> dict[str, str]:
    """What feedparser is told of the response. The base URL only when the feed has
    ``xml:base`` attributes to resolve against it: otherwise links are resolved once,
    by :func:`_link`, and feedparser skips a URL join per element (a fifth of its time).
    """
    headers = {}
    if b"xml:base" in body:
        headers["content-location"] = _base(result) or ""
    for name in ("content-type", "content-language"):
        value = result.headers.get(name)
        if value:
            headers[name] = value
    return headers


def parse_feed(result: FetchResult, source: str) -> list[Entry]:
    """Entries of the feed in ``result.body``, in feed order.

    At most :data:`MAX_ENTRIES`: a longer feed keeps its newest entries whatever its
    order (by date, else the last in the document; see
    :func:`~watchtower.sources.normalize.newest_indices`), logged once per source.
    Dates no time zone can show are dropped (one log line per feed). A well-formed
    feed with no items gives ``[]``. Raises :class:`ParseError` with a
    short reason when the body is empty, is an HTML page, or holds no feed at all.
    """
    body = result.body
    if not body.strip():
        raise ParseError("empty document")
    body = strip_entity_declarations(body)
    try:
        parsed = feedparser.parse(
            io.BytesIO(body),
            response_headers=_response_headers(result, body),
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except RecursionError as exc:
        raise ParseError("feed nested too deeply") from exc
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # feedparser has crashed on odd encodings before
        raise ParseError(f"parser failed: {_bozo_reason(exc)}") from exc
    entries = parsed.get("entries") or []
    if not parsed.get("version") and not entries:
        if _looks_like_html(body):
            raise ParseError("not a feed: HTML page")
        if body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
            raise ParseError("not a feed: JSON document")
        feed = parsed.get("feed") or {}
        if not parsed.get("bozo") and (feed.get("title") or feed.get("link")):
            return []  # a well-formed channel of an unnamed format (e.g. CDF) with no items
        raise ParseError(f"not a feed: {_bozo_reason(parsed.get('bozo_exception'))}")
    raws = [raw for raw in entries if isinstance(raw, Mapping)]
    guard = DateGuard(source)
    dates = [_published(raw, guard) for raw in raws]
    keep = newest_indices(dates, MAX_ENTRIES)
    if len(keep) < len(raws):
        note_truncation(source, len(raws), len(keep))
    guard.report()
    base = _base(result)
    return [_entry(raws[i], source, base, dates[i]) for i in keep]
