"""When a failing source is tried again: its poll interval doubled per failure, capped,
jittered, and never sooner than the server's ``Retry-After``."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from watchtower.models import SourceState


def backoff(
    every: timedelta,
    failures: int,
    cap: timedelta,
    *,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> timedelta:
    """Delay before the next try: the poll interval doubled per failure, capped, jittered.

    A server's ``Retry-After`` is honoured when it asks for longer.
    """
    base = min(every * (2 ** max(failures - 1, 0)), cap)
    delay: timedelta = base * (0.8 + 0.4 * rng())
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    ceiling: timedelta = max(cap, timedelta(seconds=retry_after or 0))
    return min(delay, ceiling)


def backing_off(state: SourceState, now: datetime) -> bool:
    """True while a failing source waits for its next try."""
    return bool(
        state.consecutive_failures and state.next_due_at is not None and now < state.next_due_at
    )
