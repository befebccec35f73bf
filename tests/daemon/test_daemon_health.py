"""The daemon reports source health by webhook: once per change of state, never repeated.

Three loopback feeds polled every 2 s — one good (new items at every poll), one answering
404 until it is restored, one that never changes — with ``report_failing_after: 3s`` and
``quiet_after: 6s``. The daemon is a subprocess; SIGTERM ends it with exit code 0.
"""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon.test_daemon_lifecycle import SECRET, Daemon, daemons, wait_for
from tests.notify.test_notify_support import reference_verify
from tests.support import LoopbackHTTP, Request, Response, shipped_baseline_yaml

__all__ = ["daemons"]

RSS = "application/rss+xml"


def rss(prefix: str, numbers: range) -> bytes:
    items = "".join(
        f"<item><title>{prefix} note {n} on harbour lanterns</title>"
        f"<link>https://news.example.org/{prefix}/{n}</link><guid>{prefix}-{n}</guid>"
        f"<description>Harbour lantern number {n} of {prefix} was repainted.</description></item>"
        for n in numbers
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{prefix}</title><link>https://news.example.org/</link>"
        f"<description>test</description>{items}</channel></rss>"
    ).encode()


def changing(prefix: str) -> Callable[[Request], Response]:
    """A feed with one new item at every request."""
    counter = itertools.count()

    def handler(req: Request) -> Response:
        n = next(counter)
        return Response(200, {"Content-Type": RSS}, rss(prefix, range(max(n - 2, 0), n + 1)))

    return handler


def write_config(tmp_path: Path, server: LoopbackHTTP) -> Path:
    sources = [("Good", "/good.xml"), ("Broken", "/broken.xml"), ("Still", "/still.xml")]
    lines = [
        f"store: sqlite:///{tmp_path}/watchtower.db",
        shipped_baseline_yaml(tmp_path),
        "fetch: {allow_private_addresses: true, timeout: 5s}",
        "service: {shutdown_timeout: 3s, jitter: 0s, backoff_max: 2s,"
        " report_failing_after: 3s, quiet_after: 6s}",
        "sources:",
        *[f"  - {{name: {n}, feed: '{server.url(p)}', every: 2s}}" for n, p in sources],
        "notify:",
        "  webhooks:",
        f"    - {{url: '{server.url('/hook')}', secret: '{SECRET}', min_score: 0.99}}",
    ]
    path = tmp_path / "watchtower.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def events(server: LoopbackHTTP) -> list[dict[str, str]]:
    bodies = [json.loads(r.body) for r in server.requests_to("/hook")]
    return [b for b in bodies if str(b.get("type", "")).startswith("source.")]


def seen(server: LoopbackHTTP) -> Counter[tuple[str, str]]:
    return Counter((e["type"], e["source"]) for e in events(server))


@pytest.mark.timeout(120)
def test_daemon_sends_failing_recovered_and_quiet_once_each(
    http_server: LoopbackHTTP, tmp_path: Path, daemons: list[Daemon]
) -> None:
    http_server.routes["/good.xml"] = changing("good")
    http_server.routes["/broken.xml"] = Response(404, {}, b"gone")
    http_server.routes["/still.xml"] = Response(200, {"Content-Type": RSS}, rss("still", range(3)))
    http_server.routes["/hook"] = Response(204, {}, b"")
    daemon = Daemon(write_config(tmp_path, http_server), tmp_path)
    daemons.append(daemon)
    daemon.wait_notify("READY=1")

    failing = ("source.failing", "Broken")
    quiet = ("source.quiet", "Still")
    recovered = ("source.recovered", "Broken")
    wait_for(lambda: seen(http_server)[failing], 30, "source.failing", daemon)
    wait_for(lambda: seen(http_server)[quiet], 30, "source.quiet", daemon)
    http_server.routes["/broken.xml"] = changing("restored")
    wait_for(lambda: seen(http_server)[recovered], 30, "source.recovered", daemon)
    time.sleep(8)  # four more polls of each source, five health checks

    assert seen(http_server) == Counter([failing, quiet, recovered]), events(http_server)
    body = next(e for e in events(http_server) if e["type"] == "source.failing")
    assert set(body) == {"type", "source", "url", "reason", "since"}
    assert "404 Not Found" in body["reason"] and body["url"].endswith("/broken.xml")
    for request in http_server.requests_to("/hook"):
        reference_verify(SECRET, request.headers, request.body, now=time.time(), tolerance=120)

    assert daemon.stop(signal.SIGTERM, timeout=15) == 0, daemon.stderr()
    assert "Traceback" not in daemon.stderr()
