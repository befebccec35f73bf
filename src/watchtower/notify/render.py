"""Alerts → safe view models → text and HTML bodies (Jinja2 templates in ``templates/``).

Everything from the web is turned into plain text (:func:`sanitize.plain_text`) and
vetted URLs (:func:`sanitize.safe_url`) before a template sees it. HTML templates
(``*.html.j2``) are autoescaped; the rendered HTML body is then re-sanitised with the
nh3 allow-list (:func:`sanitize.clean_html`) and wrapped in a fixed document shell with
an inline stylesheet — no scripts, images or remote resources. Text templates
(``*.txt.j2``) are not escaped (they are plain text).
"""

from __future__ import annotations

import email.utils
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from email.message import EmailMessage
from functools import cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from markupsafe import Markup

from watchtower.notify.sanitize import clean_html, one_line, plain_text, safe_url
from watchtower.timeutil import format_in_zone
from watchtower.web.maillinks import install_filters

if TYPE_CHECKING:
    import jinja2

    from watchtower.alertobject import LinkMaker
    from watchtower.config import EmailConfig
    from watchtower.store import AlertView

__all__ = [
    "AlertCard",
    "Outlet",
    "Reason",
    "build_message",
    "card",
    "format_message_id",
    "new_token",
    "render_html",
    "render_text",
]

_MAX_DIFF_LINES = 20
_MAX_MATCHES = 6
_MAX_TITLE = 300
_MAX_EXCERPT = 600


@dataclass(frozen=True, slots=True)
class Outlet:
    """One outlet carrying a story, ready for a template (plain text, safe URL)."""

    source: str
    title: str
    url: str | None
    published: str


@dataclass(frozen=True, slots=True)
class Reason:
    """One match of the explanation, for the "why" list.

    ``contribution`` is the match's share of the alert's evidence as a percentage
    (``"42%"``), never an internal, unbounded number.
    """

    kind: str
    label: str
    contribution: str


@dataclass(frozen=True, slots=True)
class AlertCard:
    """An alert as templates see it: every field plain text or a vetted http(s) URL.

    ``excerpt`` is a few plain-text sentences of the item (may be empty);
    ``feedback_links`` the two feedback links, or ``None`` when ``web.public_url`` is
    not set (rendered by the :mod:`watchtower.web.maillinks` filters).
    """

    alert_id: int
    rank: int
    title: str
    url: str | None
    score: str
    source: str
    published: str
    summary: str
    reasons: tuple[Reason, ...]
    outlets: tuple[Outlet, ...]
    diff: tuple[str, ...]
    diff_more: int
    excerpt: str = ""
    feedback_links: Mapping[str, str] | None = None


def _zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def format_time(value: datetime | None, zone: tzinfo) -> str:
    """``2026-05-05 07:00 UTC`` in the configured zone; ``unknown`` for ``None``.

    Never raises: a date the zone cannot represent (``31 Dec 9999`` east of UTC) is
    shown in UTC, and one that cannot be shown at all is ``unknown``.
    """
    return format_in_zone(value, zone, "%Y-%m-%d %H:%M %Z", missing="unknown")


def _share(contribution: float, total: float) -> str:
    """A match's share of the evidence as a whole percentage (0–100 %).

    Contributions are shares already (0–1, summing to at most 1); an explanation stored
    before they were (unbounded weights) is scaled by its ``total`` so it stays 0–100 %.
    """
    scale = max(total, 1.0)
    return f"{round(100 * min(max(contribution, 0.0), scale) / scale)}%"


def card(
    alert: AlertView, zone: tzinfo, rank: int = 1, *, links: LinkMaker | None = None
) -> AlertCard:
    """The template view of one alert (see :class:`AlertCard`); ``links`` makes its
    feedback links (given when ``web.public_url`` is set)."""
    expl = alert.explanation
    evidence = [m for m in expl.matches if m.kind != "exclude"]
    total = sum(max(m.contribution, 0.0) for m in evidence)
    top = sorted(evidence, key=lambda m: m.contribution, reverse=True)[:_MAX_MATCHES]
    lines = [text for line in alert.diff if (text := plain_text(line, limit=300, markup=False))]
    diff = tuple(lines[:_MAX_DIFF_LINES])
    outlets = tuple(
        Outlet(
            source=plain_text(link.source, limit=120) or "unknown outlet",
            title=plain_text(link.title, limit=_MAX_TITLE),
            url=safe_url(link.url),
            published=format_time(link.published, zone),
        )
        for link in alert.sources
    )
    if not outlets:
        outlets = (
            Outlet(
                source=plain_text(alert.source, limit=120) or "unknown outlet",
                title=plain_text(alert.title, limit=_MAX_TITLE),
                url=safe_url(alert.url),
                published=format_time(alert.published, zone),
            ),
        )
    return AlertCard(
        alert_id=alert.id,
        rank=rank,
        title=plain_text(alert.title, limit=_MAX_TITLE) or "(untitled)",
        url=safe_url(alert.url),
        score=f"{float(alert.score):.2f}",
        source=plain_text(alert.source, limit=120),
        published=format_time(alert.published, zone),
        summary=plain_text(expl.summary(), limit=500, markup=False),
        reasons=tuple(
            Reason(
                m.kind, plain_text(m.label, limit=120, markup=False), _share(m.contribution, total)
            )
            for m in top
        ),
        outlets=outlets,
        diff=diff,
        diff_more=max(len(lines) - _MAX_DIFF_LINES, 0),
        excerpt=plain_text(expl.excerpt, limit=_MAX_EXCERPT, markup=False),
        feedback_links=links(alert.id) if links is not None else None,
    )


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith(".html.j2")


@cache
def _env() -> jinja2.Environment:
    """The template environment, built on first render (Jinja2 is loaded then)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("watchtower.notify", "templates"),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    install_filters(env)
    return env


def render_text(template: str, **context: object) -> str:
    """Render a ``*.txt.j2`` template (plain text, not escaped)."""
    return _env().get_template(template).render(**context)


def render_html(template: str, *, title: str, **context: object) -> str:
    """Render a ``*.html.j2`` body, re-sanitise it, and wrap it in the document shell."""
    body = clean_html(_env().get_template(template).render(**context))
    shell = _env().get_template("_document.html.j2")
    return shell.render(title=title, body=Markup(body))


def new_token() -> str:
    """24 URL-safe random characters (for Message-IDs built here)."""
    return secrets.token_urlsafe(18)


_ID_SAFE = re.compile(r"[^A-Za-z0-9._\-+=]")


def format_message_id(message_id: str, sender: str) -> str:
    """A valid ``<local@domain>`` Message-ID from a stable id.

    ``msg_abc`` becomes ``<msg_abc@example.org>`` (domain of ``sender``); a value that
    is already ``<…@…>`` is kept.
    """
    if message_id.startswith("<") and message_id.endswith(">") and "@" in message_id:
        return message_id
    _, addr = email.utils.parseaddr(sender)
    domain = addr.rpartition("@")[2] or "watchtower.invalid"
    domain = _ID_SAFE.sub("", domain) or "watchtower.invalid"
    local = _ID_SAFE.sub("-", message_id) or new_token()
    return f"<{local}@{domain}>"


def build_message(
    cfg: EmailConfig,
    *,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> EmailMessage:
    """A multipart/alternative message (text/plain then text/html) to ``cfg.to``."""
    msg = EmailMessage()
    msg["Subject"] = one_line(subject, limit=250)
    msg["From"] = cfg.from_
    msg["To"] = ", ".join(cfg.to)
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = format_message_id(message_id, cfg.from_)
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in extra_headers:
        msg[name] = one_line(value, limit=250)
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg


def zone_of(cfg: EmailConfig) -> tzinfo:
    """The configured time zone of ``cfg`` (``timezone`` key)."""
    return _zone(cfg.timezone)
