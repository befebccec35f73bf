from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from tests.web_fakes import KEY, T0, FakeReader, live_server
from watchtower.errors import StoreError
from watchtower.web.app import create_app
from watchtower.web.health import source_status


@dataclass(frozen=True)
class _Health:  # the shape of watchtower.store.views.SourceHealth
    name: str = "Feed"
    kind: str = "feed"
    url: str = "https://feed.example/rss"
    last_polled_at: datetime | None = T0
    last_success_at: datetime | None = T0
    consecutive_failures: int = 0
    last_error: str | None = None
    failing_since: datetime | None = None


def test_states() -> None:
    day = timedelta(days=1)
    assert source_status(_Health(last_polled_at=None), now=T0)["state"] == "never-polled"
    failing = source_status(
        _Health(consecutive_failures=2, last_error="HTTP 503", failing_since=T0 - day), now=T0
    )
    assert (failing["state"], failing["last_error"]) == ("failing", "HTTP 503")
    quiet = source_status(_Health(), now=T0, quiet_after=14 * day, last_new_item=T0 - 20 * day)
    assert quiet["state"] == "quiet"
    assert source_status(_Health(), now=T0, quiet_after=14 * day)["state"] == "ok"
    recovered = source_status(_Health(last_error="old error"), now=T0)
    assert (recovered["state"], recovered["last_error"]) == ("ok", "old error")


class _Broken(FakeReader):
    def list_alerts(self, q: str | None, limit: int) -> list[dict[str, object]]:
        raise StoreError("database is locked")


def test_a_failing_store_is_503_not_a_traceback() -> None:
    with live_server(create_app(_Broken(), KEY)) as base, httpx.Client(base_url=base) as client:
        for path in ("/", "/api/alerts", "/export.csv"):
            response = client.get(path)
            assert response.status_code == 503
            assert "database is locked" not in response.text


def test_times_are_shown_in_utc() -> None:
    from watchtower.web.views import show_time

    assert show_time("2026-05-05T16:00:00+09:00") == "2026-05-05 07:00 UTC"
    assert show_time(T0) == "2026-05-05 07:00 UTC"
    assert show_time(None) == "—"
    assert show_time("<b>not a date</b>") == "<b>not a date</b>"  # text, escaped on output
