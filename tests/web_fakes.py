"""An in-memory :class:`AlertReader` and a real uvicorn server in a thread, for web tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from watchtower.web.protocol import AlertObject, SourceStatus
from watchtower.web.server import ServerHandle, serve
from watchtower.web.tokens import Verdict

KEY = b"k" * 32
T0 = datetime(2026, 5, 5, 7, 0, tzinfo=UTC)


def make_alert(
    alert_id: int,
    title: str,
    *,
    url: str | None = None,
    score: float = 0.72,
    excerpt: str = "",
    sources: list[dict[str, Any]] | None = None,
    lang: str = "en",
    summary: str = "entities: North Korea; terms: forced repatriation",
) -> AlertObject:
    url = url if url is not None else f"https://news.example.org/{alert_id}"
    published = (T0 - timedelta(hours=alert_id)).isoformat()
    return {
        "alert_id": alert_id,
        "title": title,
        "url": url,
        "score": score,
        "source": "Example News",
        "published": published,
        "sources": sources
        if sources is not None
        else [{"source": "Example News", "title": title, "url": url, "published": published}],
        "explanation": {
            "summary": summary,
            "matches": [{"kind": "term", "label": "forced repatriation", "contribution": 0.31}],
        },
        "excerpt": excerpt or f"Excerpt of {title}.",
        "lang": lang,
        "feedback": None,
    }


class FakeReader:
    """Alerts kept newest first; ``q`` matches any word of title or excerpt (fake FTS)."""

    def __init__(self, alerts: list[AlertObject] | None = None) -> None:
        self._lock = threading.Lock()
        self.alerts = list(alerts or [])
        self.verdicts: dict[int, Verdict] = {}
        self.queries: list[tuple[str | None, int]] = []
        self.feedback_calls: list[tuple[int, Verdict]] = []
        self.health: list[SourceStatus] = []

    def _object(self, alert: AlertObject) -> AlertObject:
        return {**alert, "feedback": self.verdicts.get(int(alert["alert_id"]))}

    def list_alerts(self, q: str | None, limit: int) -> list[AlertObject]:
        with self._lock:
            self.queries.append((q, limit))
            found = self.alerts
            if q:
                words = q.lower().split()
                found = [
                    a
                    for a in found
                    if all(w in (a["title"] + " " + a["excerpt"]).lower() for w in words)
                ]
            return [self._object(a) for a in found[:limit]]

    def alert(self, alert_id: int) -> AlertObject | None:
        with self._lock:
            for a in self.alerts:
                if a["alert_id"] == alert_id:
                    return self._object(a)
            return None

    def source_health(self) -> list[SourceStatus]:
        with self._lock:
            return list(self.health)

    def record_feedback(self, alert_id: int, verdict: Verdict) -> None:
        with self._lock:
            self.feedback_calls.append((alert_id, verdict))
            self.verdicts[alert_id] = verdict


class Clock:
    """A settable clock for token expiry."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1, port 0, in a thread; yield its base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="web-test-loop", daemon=True)
    thread.start()
    try:
        started: Future[ServerHandle] = asyncio.run_coroutine_threadsafe(
            serve(app, "127.0.0.1", 0), loop
        )
        handle = started.result(timeout=15)
        try:
            yield handle.url
        finally:
            asyncio.run_coroutine_threadsafe(handle.stop(timeout=3), loop).result(timeout=15)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
