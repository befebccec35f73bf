"""The Watchtower store: items, stories, alerts and the delivery outbox.

``Store.open(url)`` creates the engine (SQLite or PostgreSQL), applies the Alembic
migrations up to head and returns a :class:`Store`. See ``repo.py`` for the contract.
"""

from watchtower.store.engine import make_engine, mask_url, migrate
from watchtower.store.repo import ExactStoryIndex, Store, StoryIndex, new_message_id
from watchtower.store.views import AlertView, DeliveryJob, DigestRow, SourceHealth, SourceLink

__all__ = [
    "AlertView",
    "DeliveryJob",
    "DigestRow",
    "ExactStoryIndex",
    "SourceHealth",
    "SourceLink",
    "Store",
    "StoryIndex",
    "make_engine",
    "mask_url",
    "migrate",
    "new_message_id",
]
