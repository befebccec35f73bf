"""The daemon honours service.max_concurrent_polls, and a poll still running when its
next run is due is skipped quietly (no APScheduler 'maximum number of running instances'
warning)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.daemon.test_daemon_lifecycle import (
    Daemon,
    accept,
    daemons,  # noqa: F401  (fixture)
    wait_for,
    write_config,
)
from tests.e2e.test_e2e_run_once import IRRELEVANT, rss, watchtower
from tests.support import LoopbackHTTP, Request, Response

SOURCES = 16
LIMIT = 3


class SlowFeeds:
    """Feeds that answer after ``delay`` seconds, recording how many were in flight."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.now = 0
        self.peak = 0
        self.served = 0
        self._lock = threading.Lock()

    def __call__(self, req: Request) -> Response:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.delay)
        with self._lock:
            self.now -= 1
            self.served += 1
        return Response(200, {"Content-Type": "application/rss+xml"}, rss(IRRELEVANT, "s"))


def _config(tmp_path: Path, server: LoopbackHTTP, feeds: SlowFeeds) -> Path:
    sources = [(f"S{i}", f"/s{i}.xml") for i in range(SOURCES)]
    for _, path in sources:
        server.routes[path] = feeds
    server.routes["/hook"] = accept
    config = write_config(tmp_path, server, sources, every="1s")
    # One host stands for sixteen sites: its politeness lifted, only the poll limit bounds.
    text = (
        config.read_text()
        .replace(
            "service: {shutdown_timeout: 3s, jitter: 1s}",
            f"service: {{shutdown_timeout: 3s, jitter: 1s, max_concurrent_polls: {LIMIT}}}",
        )
        .replace(
            "fetch: {allow_private_addresses: true,",
            f"fetch: {{per_host_connections: {SOURCES}, per_host_interval: 0s,"
            " allow_private_addresses: true,",
        )
    )
    assert f"max_concurrent_polls: {LIMIT}" in text
    assert "per_host_interval: 0s" in text
    config.write_text(text)
    return config


@pytest.mark.timeout(120)
def test_daemon_keeps_to_max_concurrent_polls_and_skips_quietly(
    http_server: LoopbackHTTP,
    tmp_path: Path,
    daemons: list[Daemon],  # noqa: F811
) -> None:
    feeds = SlowFeeds(delay=0.5)  # a round of 16 at 3 a time outlasts `every: 1s`
    config = _config(tmp_path, http_server, feeds)
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    daemon.wait_notify("READY=1")
    wait_for(lambda: feeds.served >= 2 * SOURCES, 90, "every source polled twice", daemon)
    assert daemon.stop() == 0
    assert feeds.peak == LIMIT, f"{feeds.peak} requests in flight, limit {LIMIT}"
    err = daemon.stderr()
    assert "maximum number of running instances" not in err
    assert "Traceback" not in err


@pytest.mark.timeout(120)
def test_run_once_keeps_to_max_concurrent_polls(http_server: LoopbackHTTP, tmp_path: Path) -> None:
    feeds = SlowFeeds(delay=0.5)
    config = _config(tmp_path, http_server, feeds)
    result = watchtower("run", "--once", "--config", str(config), timeout=100)
    assert result.returncode == 0, result.stderr
    assert feeds.served == SOURCES
    assert feeds.peak == LIMIT, f"{feeds.peak} requests in flight, limit {LIMIT}"
