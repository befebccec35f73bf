"""JSON Feed 1.0 / 1.1 (https://jsonfeed.org) → entries. feedparser does not read it.

* :func:`looks_like_json_feed` — should the feed path dispatch here?
* :func:`parse_json_feed` — items as :class:`~watchtower.models.Entry` (kind ``feed``).

Fields read: ``id``, ``url`` (else ``external_url``), ``title``, ``summary``,
``content_text`` (else ``content_html`` as text), ``date_published`` (else
``date_modified``). Authors are not carried: :class:`Entry` has no author field.
An item without a title takes the first line of its text (JSON Feed allows that).

The body is untrusted: it is size-bounded, only ``http(s)`` links survive (relative ones
are resolved against the feed URL, ``javascript:`` and the like are dropped), HTML is
reduced to plain text, every text field is length-capped and at most
:data:`MAX_ITEMS` items are read (the newest, whatever the feed's order). Dates that
no time zone can represent are dropped with one log line per feed. Invalid JSON or
JSON that is not a JSON Feed raises :class:`~watchtower.errors.ParseError` with a
short reason.
"""

from __future__ import annotations

import html
import json
import logging
from datetime import UTC, datetime
from typing import Any

from watchtower.errors import ParseError
from watchtower.models import Entry, FetchResult
from watchtower.sources.normalize import (
    DateGuard,
    canonical_url,
    html_to_text,
    newest_indices,
    normalize_text,
    note_truncation,
    stable_guid,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 20_000_000
MAX_ITEMS = 2_000
MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 5_000
MAX_CONTENT_CHARS = 200_000
MAX_HTML_CHARS = 2_000_000
_VERSION_PREFIX = "https://jsonfeed.org/version/"
_MARKER = b"jsonfeed.org/version"


def looks_like_json_feed(result: FetchResult) -> bool:
    """True when the answer is a JSON Feed: ``application/feed+json``, or a JSON body
    (``application/json``, ``text/json``, or an untyped/plain body starting with ``{``)
    that names a ``jsonfeed.org/version`` URL."""
    ctype = result.content_type.split(";")[0].strip().lower()
    if ctype == "application/feed+json":
        return True
    body = result.body.lstrip()[:1]
    if ctype in ("application/json", "text/json"):
        return _MARKER in result.body
    if ctype in ("", "text/plain", "application/octet-stream") and body == b"{":
        return _MARKER in result.body[:65536]
    return False


def parse_json_feed(result: FetchResult, source: str) -> list[Entry]:
    """The items of a JSON Feed as entries, in feed order (items without any of id,
    url, title or text are skipped; of a feed longer than :data:`MAX_ITEMS`, the
    newest are kept, logged once per source). Raises :class:`ParseError` for invalid JSON, a
    body over :data:`MAX_BODY_BYTES`, or JSON that is not a JSON Feed."""
    feed = _load(result.body)
    items = feed.get("items")
    if not isinstance(items, list):
        raise ParseError("not a JSON Feed: items is missing or not a list")
    objects = [item for item in items if isinstance(item, dict)]
    guard = DateGuard(source)
    dates = [_item_date(item, guard) for item in objects]
    keep = newest_indices(dates, MAX_ITEMS)
    if len(keep) < len(objects):
        note_truncation(source, len(objects), len(keep))
    guard.report()
    entries: list[Entry] = []
    for i in keep:
        entry = _entry(objects[i], source, result.url, dates[i])
        if entry is not None:
            entries.append(entry)
    return entries


def _load(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise ParseError(f"JSON Feed too large: {len(body)} bytes (limit {MAX_BODY_BYTES})")
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ParseError("not a JSON Feed: the body is not UTF-8") from exc
    except RecursionError as exc:
        raise ParseError("invalid JSON: nested too deeply") from exc
    except ValueError as exc:
        raise ParseError(f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ParseError("not a JSON Feed: the top level is not an object")
    version = data.get("version")
    if not isinstance(version, str):
        raise ParseError("not a JSON Feed: missing version")
    if not version.startswith(_VERSION_PREFIX):
        raise ParseError(f"not a JSON Feed: unknown version {version[:80]!r}")
    return data


def _text_field(obj: dict[str, Any], key: str, *, number: bool = False) -> str | None:
    """A string field; a number too when ``number`` (ids are sometimes numbers)."""
    value = obj.get(key)
    if number and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def _plain(value: str | None, limit: int) -> str:
    if not value:
        return ""
    return normalize_text(value[: limit * 2])[:limit]


def _from_html(value: str | None, limit: int) -> str:
    if not value:
        return ""
    if "<" not in value:
        return normalize_text(html.unescape(value[: limit * 2]))[:limit]
    return html_to_text(value[:MAX_HTML_CHARS])[:limit]


def _entry(
    item: dict[str, Any], source: str, base: str, published: datetime | None
) -> Entry | None:
    url = canonical_url(_text_field(item, "url"), base) or canonical_url(
        _text_field(item, "external_url"), base
    )
    content = _plain(_text_field(item, "content_text"), MAX_CONTENT_CHARS) or _from_html(
        _text_field(item, "content_html"), MAX_CONTENT_CHARS
    )
    summary = _from_html(_text_field(item, "summary"), MAX_SUMMARY_CHARS)
    title = _from_html(_text_field(item, "title"), MAX_TITLE_CHARS)
    item_id = _text_field(item, "id", number=True)
    if not (item_id or url or title or content or summary):
        return None
    if not title:
        first = (summary or content).split("\n", 1)[0]
        title = first[:120] + ("…" if len(first) > 120 else "")
    return Entry(
        source=source,
        guid=stable_guid(item_id, url, title, summary or content),
        title=title or (url or "untitled"),
        url=url,
        summary=summary,
        content=content,
        published=published,
        kind="feed",
    )


def _item_date(item: dict[str, Any], guard: DateGuard) -> datetime | None:
    """``date_published``, else ``date_modified``, as checked by ``guard``."""
    for key in ("date_published", "date_modified"):
        value = _date(_text_field(item, key), guard)
        if value is not None:
            return value
    return None


def _date(value: str | None, guard: DateGuard) -> datetime | None:
    """RFC 3339 → aware UTC datetime; a date without a zone is taken as UTC.

    A date that no time zone can represent (or that overflows on conversion to UTC)
    is dropped and counted by ``guard``.
    """
    if not value or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        utc = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        guard.reject(value.strip())
        return None
    return guard.check(utc)
