"""Feedback: the analyst's verdicts on alerts (relevant / not relevant).

The room for ``watchtower feedback`` and the review page: its table and methods land
here, on :class:`FeedbackMixin`, which the :class:`~watchtower.store.repo.Store` facade
already includes.
"""

from __future__ import annotations

from watchtower.store.base import StoreBase


class FeedbackMixin(StoreBase):
    """Verdicts on alerts (none stored yet)."""
