"""Dates from untrusted sources, kept inside the range every time zone can show.

Python's ``datetime`` spans the years 1 to 9999. A date near either end (``31 Dec
9999 23:00 UTC``, ``1 Jan 0001``) exists in UTC but overflows when converted to a zone
with an offset the other way (``OverflowError``), and so breaks whatever renders it.
UTC offsets are always less than a day, so every zone can represent any instant in
[:data:`SAFE_MIN`, :data:`SAFE_MAX`]:

* :func:`representable` — the date as aware UTC, or ``None`` outside that range (used
  at parse time, where such a date is dropped with a log line by the caller);
* :func:`in_zone` / :func:`format_in_zone` — conversion and formatting that never
  raise, for every place a stored date is shown (older rows may predate the check).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

__all__ = ["SAFE_MAX", "SAFE_MIN", "format_in_zone", "in_zone", "representable"]

#: The earliest instant every time zone can represent.
SAFE_MIN = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
#: The latest instant every time zone can represent.
SAFE_MAX = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


def representable(value: datetime | None) -> datetime | None:
    """``value`` as aware UTC when every zone can show it, else ``None``.

    A naive ``value`` is taken as UTC. Never raises.
    """
    if value is None:
        return None
    try:
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return aware if SAFE_MIN <= aware <= SAFE_MAX else None


def in_zone(value: datetime, zone: tzinfo) -> datetime | None:
    """``value`` converted to ``zone`` (naive means UTC), or ``None`` if it cannot be."""
    try:
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        return aware.astimezone(zone)
    except (OverflowError, ValueError):
        return None


def format_in_zone(
    value: datetime | None, zone: tzinfo, fmt: str = "%Y-%m-%d %H:%M %Z", *, missing: str = ""
) -> str:
    """``value`` formatted with ``fmt`` in ``zone``; never raises.

    A date the zone cannot represent is formatted in UTC instead; ``missing`` is
    returned for ``None`` or a date that cannot be formatted at all.
    """
    if value is None:
        return missing
    for target in (zone, UTC):
        moment = in_zone(value, target)
        if moment is None:
            continue
        try:
            return moment.strftime(fmt)
        except (OverflowError, ValueError):
            continue
    return missing
