"""Alert objects and health rows → template view models (plain text, vetted links).

Everything the reader returns is treated as untrusted web content: text goes through
:func:`watchtower.notify.sanitize.plain_text` (markup dropped, one line, bounded) and is
escaped again by the autoescaping templates; a URL becomes a link only when
:func:`watchtower.notify.sanitize.safe_url` accepts it (absolute http/https), otherwise
it is shown as text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watchtower.notify.sanitize import plain_text, safe_url
from watchtower.web.protocol import AlertObject, SourceStatus

__all__ = [
    "CSV_COLUMNS",
    "Card",
    "HealthRow",
    "Link",
    "Reason",
    "alerts_csv",
    "card",
    "health_row",
    "json_bytes",
    "show_time",
]

_MAX_TITLE = 300
_MAX_EXCERPT = 1200
_VERDICT_LABEL = {"relevant": "Relevant", "not-relevant": "Not relevant"}


@dataclass(frozen=True, slots=True)
class Link:
    """Text with an optional vetted href (``None``: show the text, no link)."""

    text: str
    href: str | None
    raw: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Reason:
    """One match of the explanation."""

    kind: str
    label: str
    contribution: str


@dataclass(frozen=True, slots=True)
class Card:
    """One alert as the page shows it."""

    alert_id: int
    title: str
    href: str | None
    url_text: str
    score: str
    source: str
    published: str
    summary: str
    excerpt: str
    lang: str
    feedback: str | None
    feedback_label: str
    outlets: tuple[Link, ...]
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class HealthRow:
    """One source on the health page."""

    name: str
    href: str | None
    url_text: str
    kind: str
    state: str
    last_polled: str
    last_success: str
    last_error: str
    failing_since: str
    last_new_item: str


def show_time(value: object) -> str:
    """``2026-05-05 07:00 UTC`` (in UTC) for a datetime or ISO string; ``—`` for nothing."""
    if value is None or value == "":
        return "—"
    when: datetime | None = value if isinstance(value, datetime) else None
    if when is None and isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return plain_text(value, limit=40, markup=False)
    if when is None:
        return plain_text(str(value), limit=40, markup=False)
    if when.tzinfo is None:
        return when.strftime("%Y-%m-%d %H:%M")
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _text(value: object, limit: int) -> str:
    return plain_text(value if isinstance(value, str) else None, limit=limit)


def _score(value: object) -> str:
    try:
        return f"{float(value):.2f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "?"


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _reasons(explanation: Mapping[str, Any]) -> tuple[Reason, ...]:
    """The matches with each one's share of the evidence as a percentage (0–100 %)."""
    matches = explanation.get("matches")
    if not isinstance(matches, list):
        return ()
    shown = [m for m in matches[:12] if isinstance(m, Mapping)]
    total = sum(
        max(_number(m.get("contribution")), 0.0) for m in shown if m.get("kind") != "exclude"
    )
    scale = max(total, 1.0)  # shares already (0–1); older, unbounded weights are scaled
    reasons = []
    for match in shown:
        share = min(max(_number(match.get("contribution")), 0.0), scale) / scale
        reasons.append(
            Reason(_text(match.get("kind"), 20), _text(match.get("label"), 120), f"{share:.0%}")
        )
    return tuple(reasons)


def _outlets(alert: AlertObject) -> tuple[Link, ...]:
    outlets = []
    raw_sources = alert.get("sources")
    for entry in raw_sources if isinstance(raw_sources, list) else []:
        if not isinstance(entry, Mapping):
            continue
        url = entry.get("url") if isinstance(entry.get("url"), str) else None
        outlets.append(
            Link(
                text=_text(entry.get("source"), 120) or "unknown outlet",
                href=safe_url(url),
                raw=plain_text(url, limit=300, markup=False),
                note=_text(entry.get("title"), _MAX_TITLE),
            )
        )
    if not outlets:
        url = alert.get("url") if isinstance(alert.get("url"), str) else None
        outlets.append(
            Link(
                _text(alert.get("source"), 120) or "unknown outlet",
                safe_url(url),
                plain_text(url, limit=300, markup=False),
            )
        )
    return tuple(outlets)


def card(alert: AlertObject) -> Card:
    """The view model of one alert object (see :mod:`watchtower.web.protocol`)."""
    explanation = alert.get("explanation")
    explanation = explanation if isinstance(explanation, Mapping) else {}
    feedback = alert.get("feedback")
    feedback = feedback if feedback in _VERDICT_LABEL else None
    url = alert.get("url") if isinstance(alert.get("url"), str) else None
    return Card(
        alert_id=int(alert["alert_id"]),
        title=_text(alert.get("title"), _MAX_TITLE) or "(untitled)",
        href=safe_url(url),
        url_text=plain_text(url, limit=300, markup=False),
        score=_score(alert.get("score")),
        source=_text(alert.get("source"), 120),
        published=show_time(alert.get("published")),
        summary=_text(explanation.get("summary"), 500) or "no explanation stored",
        excerpt=_text(alert.get("excerpt"), _MAX_EXCERPT),
        lang=_text(alert.get("lang"), 12),
        feedback=feedback,
        feedback_label=_VERDICT_LABEL.get(feedback or "", ""),
        outlets=_outlets(alert),
        reasons=_reasons(explanation),
    )


def health_row(row: SourceStatus) -> HealthRow:
    """The view model of one source-health row."""
    url = row.get("url")
    return HealthRow(
        name=_text(row.get("name"), 120) or "(unnamed)",
        href=safe_url(url),
        url_text=plain_text(url, limit=300, markup=False),
        kind=_text(row.get("kind"), 20),
        state=_text(row.get("state"), 20) or "unknown",
        last_polled=show_time(row.get("last_polled")),
        last_success=show_time(row.get("last_success")),
        last_error=_text(row.get("last_error"), 300),
        failing_since=show_time(row.get("failing_since")),
        last_new_item=show_time(row.get("last_new_item")),
    )


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_bytes(value: object) -> bytes:
    """Compact UTF-8 JSON; datetimes become ISO 8601."""
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), default=_json_default
    ).encode("utf-8")


CSV_COLUMNS = (
    "alert_id",
    "published",
    "score",
    "title",
    "url",
    "source",
    "sources",
    "summary",
    "lang",
    "feedback",
    "excerpt",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return text


def alerts_csv(alerts: Iterable[AlertObject]) -> str:
    """CSV (header + one row per alert) of :data:`CSV_COLUMNS`; outlets joined by ``|``.

    Cells that start like a formula (``=``, ``+``, ``-``, ``@``) get a leading ``'``.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for alert in alerts:
        explanation = alert.get("explanation")
        raw_sources = alert.get("sources")
        sources = raw_sources if isinstance(raw_sources, list) else []
        outlets = " | ".join(
            f"{s.get('source', '')} <{s.get('url') or ''}>"
            for s in sources
            if isinstance(s, Mapping)
        )
        summary = explanation.get("summary") if isinstance(explanation, Mapping) else ""
        row = [
            alert.get("alert_id"),
            alert.get("published"),
            alert.get("score"),
            alert.get("title"),
            alert.get("url"),
            alert.get("source"),
            outlets,
            summary,
            alert.get("lang"),
            alert.get("feedback"),
            alert.get("excerpt"),
        ]
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()
