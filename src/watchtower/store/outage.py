"""Whether the store answers: one WARNING line per outage, with its cause, and counts.

:class:`Availability` is told about every transaction's end by the store
(:meth:`watchtower.store.base.StoreBase._tx`). A failure that means the database is
unreachable or cannot write (connection refused or lost, disk full, locked past the
busy timeout: SQLAlchemy's ``OperationalError`` family) starts an *outage*: it is
logged once as a WARNING with its cause; further failures during it are only counted.
The first transaction that succeeds afterwards ends it with one line saying how long it
lasted. Other store errors (a statement the database refuses) are counted, not treated
as an outage. The counts feed ``status``-like summaries, metrics and the daemon's
shutdown line. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from watchtower import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AvailabilityCounts:
    """Store failures seen by this process: ``errors`` in all, ``outages`` begun."""

    errors: int = 0
    outages: int = 0
    down: bool = False
    cause: str | None = None


def is_outage(exc: BaseException) -> bool:
    """True for a failure of the database itself rather than of one statement."""
    if isinstance(exc, (OperationalError, DisconnectionError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Availability:
    """Tracks outages of one store (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors = 0
        self._outages = 0
        self._down_since: float | None = None
        self._cause: str | None = None
        self._failed_during = 0

    def failed(self, message: str, exc: BaseException) -> None:
        """Record a failed transaction; ``message`` is the short, secret-free cause."""
        outage = is_outage(exc)
        with self._lock:
            self._errors += 1
            starts = outage and self._down_since is None
            if starts:
                self._outages += 1
                self._down_since = time.monotonic()
                self._cause = message
                self._failed_during = 0
            if self._down_since is not None:
                self._failed_during += 1
        metrics.observe_store_error(outage_started=starts)
        if starts:
            log.warning(
                "store unavailable: %s (until it answers again, failures are counted, not logged)",
                message,
            )

    def ok(self) -> None:
        """Record a transaction that succeeded; ends a current outage."""
        if self._down_since is None:  # the common case: no lock needed
            return
        with self._lock:
            since, failed = self._down_since, self._failed_during
            self._down_since = None
            self._cause = None
        if since is not None:
            metrics.set_store_up(True)
            log.warning(
                "store available again after %.0f s (%d operations failed meanwhile)",
                time.monotonic() - since,
                failed,
            )

    def counts(self) -> AvailabilityCounts:
        with self._lock:
            return AvailabilityCounts(
                self._errors, self._outages, self._down_since is not None, self._cause
            )
