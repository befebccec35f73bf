"""The one ``Retry-After`` parser (RFC 9110 §10.2.3), for feeds and for webhook receivers.

Rule: the value is either delta-seconds (ASCII digits only; a sign, a fraction or any
other text is unreadable) or an HTTP-date. A date is read with
``email.utils.parsedate_to_datetime``; one without a zone (``-0000``) is taken as UTC,
since an HTTP-date is always GMT. The answer is the seconds from ``now`` to then:
never negative (a date in the past means "now"), capped at ``cap`` (the caller's
policy: a feed may ask for a week, a webhook receiver for a day). An absent or
unreadable value, or a date outside what ``datetime`` can hold, gives ``None``.
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC

__all__ = ["parse_retry_after"]


def parse_retry_after(value: str | None, *, cap: float, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, per the module's rule.

    ``now`` is a POSIX timestamp (default: the current time).
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), cap)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        seconds = when.timestamp() - (time.time() if now is None else now)
    except (OverflowError, OSError, ValueError):
        return None
    return min(max(seconds, 0.0), cap)
