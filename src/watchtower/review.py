"""The review page wired to the store and the config: key, links, reader, server.

* :func:`signing_key` — the key that signs feedback links: derived from ``web.secret``,
  else a random key kept in the store (so links survive restarts);
* :func:`link_maker` — makes an alert's ``feedback_links`` when ``web.public_url`` is
  set (for emails, webhook bodies and ``alerts --json``), else ``None``;
* :class:`StoreReader` — the :class:`~watchtower.web.protocol.AlertReader` over a
  :class:`~watchtower.store.Store`: alert objects from
  :func:`~watchtower.alertobject.alert_object`, full-text search, source health;
* :func:`start_review_page` — serve the page on ``web.listen`` inside the running loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from watchtower.alertobject import LinkMaker, alert_object
from watchtower.web.health import source_status
from watchtower.web.protocol import AlertObject, SourceStatus
from watchtower.web.tokens import Verdict, derive_key, feedback_links, new_key

if TYPE_CHECKING:
    from watchtower.config import Config
    from watchtower.store import AlertView, Store
    from watchtower.web.server import ServerHandle

__all__ = ["StoreReader", "link_maker", "signing_key", "start_review_page"]

log = logging.getLogger(__name__)

#: Name of the kept key in the store (``store_key`` table).
WEB_KEY_NAME = "web"

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def signing_key(config: Config, store: Store) -> bytes:
    """``derive_key(web.secret)``, else the random key kept in ``store`` (made once)."""
    if config.web.secret is not None:
        return derive_key(config.web.secret.get_secret_value())
    return store.kept_key(WEB_KEY_NAME, new_key)


def link_maker(config: Config, store: Store, clock: Clock = _utcnow) -> LinkMaker | None:
    """A function alert id → ``{"relevant": URL, "not_relevant": URL}``, or ``None``
    when ``web.public_url`` is not set."""
    public_url = config.web.public_url
    if public_url is None:
        return None
    key = signing_key(config, store)

    def links(alert_id: int) -> dict[str, str]:
        return feedback_links(public_url, alert_id, key, clock())

    return links


class StoreReader:
    """The review page's :class:`~watchtower.web.protocol.AlertReader` over the store.

    Thread-safe as the store is. ``quiet_after`` is the default "quiet" bound of the
    health rows (``None``: no source is ever quiet).
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = _utcnow,
        quiet_after: timedelta | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._quiet_after = quiet_after

    def _objects(self, views: list[AlertView]) -> list[AlertObject]:
        verdicts = self._store.feedback_for(v.id for v in views)
        return [alert_object(v, feedback=verdicts.get(v.id)) for v in views]

    def list_alerts(self, q: str | None, limit: int) -> list[AlertObject]:
        """At most ``limit`` alert objects, newest first; ``q`` searches the items' text."""
        return self._objects(self._store.search_alerts(q, limit))

    def alert(self, alert_id: int) -> AlertObject | None:
        """One alert object, or ``None``."""
        view = self._store.alert_view(alert_id)
        return self._objects([view])[0] if view is not None else None

    def source_health(self) -> list[SourceStatus]:
        """Every configured source, by name."""
        now = self._clock()
        rows = [
            source_status(h, now=now, quiet_after=self._quiet_after)
            for h in self._store.source_health(now)
        ]
        return sorted(rows, key=lambda r: r["name"].casefold())

    def record_feedback(self, alert_id: int, verdict: Verdict) -> None:
        """Store the verdict, replacing any earlier one."""
        self._store.record_feedback(alert_id, verdict, now=self._clock())


async def start_review_page(config: Config, store: Store) -> ServerHandle | None:
    """Serve the review page on ``web.listen`` in the running loop; ``None`` when off.

    Raises :class:`OSError` when the address cannot be bound.
    """
    listen = config.web.listen
    if listen is None:
        return None
    import asyncio

    from watchtower.web.app import create_app
    from watchtower.web.server import parse_listen, serve

    key = await asyncio.to_thread(signing_key, config, store)
    auth = config.web.auth.get_secret_value() if config.web.auth is not None else None
    app = create_app(StoreReader(store), key, auth=auth, public_url=config.web.public_url)
    host, port = parse_listen(listen)
    handle = await serve(app, host, port)
    log.info("review page on %s (auth %s)", handle.url, "on" if auth else "off")
    return handle
