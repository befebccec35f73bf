"""The alert object: ONE builder for the webhook body, ``alerts --json`` and the web API.

:func:`alert_object` turns an :class:`~watchtower.store.AlertView` into the dict of the
fixed contract (DESIGN.md, "The alert object")::

    {"type": "alert", "alert_id", "score", "title", "url", "source", "published",
     "sources": [{"source", "title", "url", "published"}, …every outlet],
     "explanation": {…}, "lang", "excerpt", "feedback", "feedback_links"?, "archive"}

* ``lang`` and ``excerpt`` come from the stored explanation (``"und"`` and ``""`` for
  alerts stored before they existed);
* ``feedback`` is the analyst's verdict (``None``, ``"relevant"``, ``"not-relevant"``);
* ``feedback_links`` (``{"relevant": URL, "not_relevant": URL}``) is present only when
  a :class:`LinkMaker` is given, i.e. when ``web.public_url`` is set;
* ``archive`` is the alert's archived copy (``{"path", "sha256", "fetched_at"}``) or null.

Times are ISO 8601 with offset, or null. For page alerts the added lines are in
``explanation["diff"]``. The object is JSON-ready (only str, int, float, bool, None,
lists and dicts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watchtower.store import AlertView

__all__ = ["CONTRACT_KEYS", "LinkMaker", "alert_object"]

#: Makes the two feedback links of an alert id (see :func:`watchtower.web.tokens.feedback_links`).
LinkMaker = Callable[[int], dict[str, str]]

#: Keys every alert object has (``feedback_links`` only when links are made).
CONTRACT_KEYS = (
    "type",
    "alert_id",
    "score",
    "title",
    "url",
    "source",
    "published",
    "sources",
    "explanation",
    "lang",
    "excerpt",
    "feedback",
    "archive",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _plain(value: Any) -> Any:
    """``value`` with datetimes as ISO text, so an archive mapping is JSON-ready."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def alert_object(
    alert: AlertView,
    *,
    feedback: str | None = None,
    links: LinkMaker | None = None,
) -> dict[str, Any]:
    """The contract dict of ``alert`` (see the module docstring)."""
    expl = alert.explanation
    explanation = expl.to_dict()
    if alert.diff:
        explanation["diff"] = list(alert.diff)
    obj: dict[str, Any] = {
        "type": "alert",
        "alert_id": alert.id,
        "score": round(float(alert.score), 4),
        "title": alert.title,
        "url": alert.url,
        "source": alert.source,
        "published": _iso(alert.published),
        "sources": [
            {
                "source": link.source,
                "title": link.title,
                "url": link.url,
                "published": _iso(link.published),
            }
            for link in alert.sources
        ],
        "explanation": explanation,
        "lang": expl.lang or "und",
        "excerpt": expl.excerpt or "",
        "feedback": feedback,
    }
    if links is not None:
        obj["feedback_links"] = links(alert.id)
    obj["archive"] = _plain(alert.archive) if alert.archive is not None else None
    return obj
