"""The alert's ``archive`` column: migration 0005 on a database with alerts, the setter,
and every alert read (list, one alert) carrying the value, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.notify.test_notify_support import SOURCES, add_alerts, notify_config, scored
from watchtower.store import Store
from watchtower.store.engine import make_engine, migrate

RECORD = {
    "path": "/var/lib/watchtower/archive/2026/12/01/x.warc.gz",
    "sha256": "ab" * 32,
    "fetched_at": "2026-12-01T08:00:00Z",
}


def test_migration_keeps_alerts_and_the_setter_round_trips(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        migrate(engine, "0004")  # a store from before the archive existed (the revision before)
        old = Store(engine)
        old.sync_sources(SOURCES)
        [first] = add_alerts(old, notify_config(), [scored("Daily NK", "before", 0.9)])
    finally:
        engine.dispose()

    with Store.open(store_url) as store:  # migrates to head
        assert store.alert_view(first) is not None
        assert store.alert_view(first).archive is None  # type: ignore[union-attr]
        [second] = add_alerts(store, notify_config(), [scored("Daily NK", "after", 0.9)])
        assert store.set_alert_archive(second, RECORD) is True
        assert store.set_alert_archive(10_000, RECORD) is False
        assert store.alert_item_guids([first, second, 10_000]) == {
            first: "before",
            second: "after",
        }
        by_id = {a.id: a for a in store.list_alerts()}
        assert by_id[second].archive == RECORD
        assert by_id[first].archive is None
        assert store.alert_view(second).archive == RECORD  # type: ignore[union-attr]
        assert store.set_alert_archive(second, None) is True
        assert store.alert_view(second).archive is None  # type: ignore[union-attr]
