"""Apprise channels (``notify.apprise``): one short, phone-readable message per delivery.

:func:`send_apprise` sends one message to one Apprise URL and returns once Apprise says
it was accepted; otherwise it raises :class:`DeliveryError` (retried by the outbox like a
webhook). The wait is bounded by the entry's ``timeout``. An Apprise URL holds
credentials, so it never appears in a log line, an error or the store: errors name the
channel key and the URL's scheme only, and Apprise's own logger (which prints URLs) is
kept quiet.

Messages: :func:`alert_message` (title; score and source; why; link) and
:func:`event_message` (a source health event).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from watchtower.errors import DeliveryError
from watchtower.notify.sanitize import plain_text, safe_url

if TYPE_CHECKING:
    from watchtower.config.apprise import AppriseConfig
    from watchtower.store import AlertView
    from watchtower.store.health import SourceEventView

__all__ = ["alert_message", "event_message", "send_apprise"]

log = logging.getLogger(__name__)
# Apprise logs the URLs it sends to, credentials included: keep its logger silent.
logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)

_TITLE_LIMIT = 120
_WHY_LIMIT = 200
_WHY_TERMS = 3


def alert_message(alert: AlertView) -> tuple[str, str]:
    """``(title, body)`` for one alert: title; "score 0.82 · source"; why; link."""
    title = plain_text(alert.title, limit=_TITLE_LIMIT) or "(untitled)"
    source = plain_text(alert.source, limit=80) or "unknown source"
    top = sorted(
        (m for m in alert.explanation.matches if m.kind != "exclude"),
        key=lambda m: m.contribution,
        reverse=True,
    )[:_WHY_TERMS]
    why = ", ".join(plain_text(m.label, limit=60, markup=False) for m in top)
    lines = [f"score {alert.score:.2f} · {source}"]
    if why:
        lines.append(plain_text(f"why: {why}", limit=_WHY_LIMIT, markup=False))
    link = safe_url(alert.url)
    if link:
        lines.append(link)
    return title, "\n".join(lines)


def event_message(event: SourceEventView) -> tuple[str, str]:
    """``(title, body)`` for a source health event."""
    what = {
        "source.failing": "is failing",
        "source.recovered": "recovered",
        "source.quiet": "is quiet",
    }.get(event.type, event.type)
    source = plain_text(event.source, limit=80) or "a source"
    title = f"Watchtower: {source} {what}"
    since = event.since.isoformat(timespec="minutes")
    body = f"{plain_text(event.reason, limit=_WHY_LIMIT, markup=False)} (since {since})"
    link = safe_url(event.url)
    return title, f"{body}\n{link}" if link else body


def _notify(url: str, title: str, body: str, timeout: float) -> bool:
    import apprise  # imported on first send: a run that sends nothing never loads it

    sender = apprise.Apprise()
    if not sender.add(url):
        return False
    return bool(sender.notify(body=body, title=title, timeout=timeout))


async def send_apprise(cfg: AppriseConfig, title: str, body: str) -> None:
    """Send one message to ``cfg.url``; return once accepted, else raise DeliveryError."""
    where = f"apprise {cfg.key} ({cfg.scheme}://…)"
    seconds = cfg.timeout.total_seconds()
    url = cfg.url.get_secret_value()
    try:
        async with asyncio.timeout(seconds + 1.0):
            accepted = await asyncio.to_thread(_notify, url, title, body, seconds)
    except TimeoutError:
        raise DeliveryError(f"{where}: no answer within {seconds:g}s") from None
    except Exception as exc:  # Apprise plugins raise what they like; the URL stays out
        raise DeliveryError(f"{where}: failed ({type(exc).__name__})") from None
    if not accepted:
        raise DeliveryError(f"{where}: not accepted")
