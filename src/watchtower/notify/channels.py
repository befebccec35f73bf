"""The delivery channels every configuration may have besides its own entries, by name,
and the choice of an alert's channels that needs nothing but the config.

Kept apart from the senders so that the store, the poll and ``run --once`` name these
channels without importing any sender (HTTP client, email, templates).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchtower.config.evidence import ArchiveConfig

__all__ = ["DIGEST_CHANNEL", "SAVE_PAGE_NOW_CHANNEL", "with_save_page_now"]

#: The daily digest email (:mod:`watchtower.notify.digest` sends it).
DIGEST_CHANNEL = "digest"
#: The Internet Archive's Save Page Now (:mod:`watchtower.notify.savepagenow`).
SAVE_PAGE_NOW_CHANNEL = "savepagenow"


def with_save_page_now(
    channels: Callable[[float], Sequence[str]], archive: ArchiveConfig
) -> Callable[[float], list[str]]:
    """``channels`` plus :data:`SAVE_PAGE_NOW_CHANNEL` for every alert when it is on."""
    enabled = archive.save_page_now

    def wanted(score: float) -> list[str]:
        names = list(channels(score))
        if enabled and SAVE_PAGE_NOW_CHANNEL not in names:
            names.append(SAVE_PAGE_NOW_CHANNEL)
        return names

    return wanted
