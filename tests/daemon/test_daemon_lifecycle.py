"""The daemon as users run it: a subprocess with signals, a notify socket and receivers."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.test_e2e_run_once import IRRELEVANT, RELEVANT, rss
from tests.support import ROOT, LoopbackHTTP, Request, Response, shipped_baseline_yaml, trickle

SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ=="


def write_config(
    tmp_path: Path, server: LoopbackHTTP, sources: list[tuple[str, str]], *, every: str = "2s"
) -> Path:
    lines = [
        f"store: sqlite:///{tmp_path}/watchtower.db",
        shipped_baseline_yaml(tmp_path),
        "fetch: {allow_private_addresses: true, timeout: 20s}",
        "service: {shutdown_timeout: 3s, jitter: 1s}",
        "sources:",
        *[f"  - {{name: {n}, feed: '{server.url(p)}', every: {every}}}" for n, p in sources],
        "notify:",
        "  webhooks:",
        f"    - {{url: '{server.url('/hook')}', secret: '{SECRET}', min_score: 0.5}}",
    ]
    path = tmp_path / "watchtower.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Daemon:
    def __init__(self, config: Path, tmp_path: Path) -> None:
        self.notify_path = tmp_path / f"notify-{time.monotonic_ns()}.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.notify_path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self.log = tmp_path / f"daemon-{time.monotonic_ns()}.log"
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(self.notify_path),
            "WATCHDOG_USEC": "1000000",  # systemd's WatchdogSec=1s: a ping every 0.5 s
            "PYTHONWARNINGS": "ignore",
        }
        env.pop("WATCHDOG_PID", None)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "watchtower", "run", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
                cwd=ROOT,
            )

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def read_notify(self) -> None:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                return

    def wait_notify(self, needle: str, timeout: float = 30) -> None:
        wait_for(
            lambda: self.read_notify() or any(needle in m for m in self.messages),
            timeout,
            f"notify {needle}",
            self,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.sock.close()


def wait_for(
    cond: Callable[[], object], timeout: float, what: str, daemon: Daemon | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon is not None:
            # Keep the notify socket drained: its queue holds net.unix.max_dgram_qlen
            # datagrams (often 10), and a full queue drops STOPPING=1.
            daemon.read_notify()
        if cond():
            return
        if daemon is not None and daemon.proc.poll() is not None:
            pytest.fail(
                f"daemon exited ({daemon.proc.returncode}) waiting for {what}:\n"
                + daemon.stderr()[-3000:]
            )
        time.sleep(0.1)
    pytest.fail(
        f"timed out waiting for {what}" + (f":\n{daemon.stderr()[-3000:]}" if daemon else "")
    )


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.close()


def hook_bodies(server: LoopbackHTTP) -> list[tuple[str, dict[str, object]]]:
    return [(r.headers["webhook-id"], json.loads(r.body)) for r in server.requests_to("/hook")]


def accept(req: Request) -> Response:
    return Response(200, {}, b"ok")


@pytest.mark.timeout(90)
def test_sigterm_mid_poll_drains_and_exits_zero(
    http_server: LoopbackHTTP, tmp_path: Path, daemons: list[Daemon]
) -> None:
    http_server.routes["/a.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT + IRRELEVANT, "a")
    )
    slow_body = rss(RELEVANT, "slow")
    http_server.routes["/slow.xml"] = lambda req: Response(
        200,
        {"Content-Type": "application/rss+xml", "Content-Length": str(len(slow_body))},
        trickle(slow_body, 0.05),
    )
    http_server.routes["/hook"] = accept
    config = write_config(
        tmp_path, http_server, [("A", "/a.xml"), ("Slow", "/slow.xml")], every="1h"
    )
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    daemon.wait_notify("READY=1")
    daemon.wait_notify("WATCHDOG=1", timeout=5)
    wait_for(lambda: len(hook_bodies(http_server)) >= len(RELEVANT), 40, "first alerts", daemon)
    wait_for(lambda: http_server.requests_to("/slow.xml"), 20, "slow poll started", daemon)

    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM, timeout=15) == 0, daemon.stderr()
    assert time.monotonic() - started < 3 + 5
    daemon.wait_notify("STOPPING=1", timeout=2)
    err = daemon.stderr()
    assert "watchtower stopped:" in err
    assert "Traceback" not in err
    con = sqlite3.connect(tmp_path / "watchtower.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    slow_items = con.execute(
        "SELECT count(*) FROM item JOIN source ON item.source_id = source.id "
        "WHERE source.name = 'Slow'"
    ).fetchone()[0]
    assert slow_items in (0, len(RELEVANT)), "a poll is stored whole or not at all"


@pytest.mark.timeout(120)
def test_sigkill_and_restart_neither_loses_nor_duplicates_alerts(
    http_server: LoopbackHTTP, tmp_path: Path, daemons: list[Daemon]
) -> None:
    http_server.routes["/a.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT + IRRELEVANT, "a")
    )
    # Deterministic crash mid-delivery: the first daemon's first webhook is accepted,
    # every later one hangs until the daemon has been killed (so it is never marked
    # sent). A fixed wait for "a first webhook" used to race the second one.
    killed = threading.Event()
    answered: list[str] = []

    def receiver(req: Request) -> Response:
        if not killed.is_set() and answered:
            killed.wait(60)
            return Response(503, {}, b"gone")
        answered.append(req.headers["webhook-id"])
        return Response(200, {}, b"ok")

    http_server.routes["/hook"] = receiver
    config = write_config(tmp_path, http_server, [("A", "/a.xml")])
    first = Daemon(config, tmp_path)
    daemons.append(first)
    first.wait_notify("READY=1")
    wait_for(lambda: len(http_server.requests_to("/hook")) >= 2, 60, "two webhooks", first)
    first.proc.kill()
    first.proc.wait(5)
    killed.set()

    second = Daemon(config, tmp_path)
    daemons.append(second)
    second.wait_notify("READY=1")
    con = sqlite3.connect(tmp_path / "watchtower.db")
    stored = {row[0] for row in con.execute("SELECT id FROM alert")}
    assert len(stored) >= len(RELEVANT)
    # The delivery the first daemon left "sending" is due at once (not after its
    # 5-minute lease): the second daemon holds the store alone.
    wait_for(lambda: len(answered) >= len(stored), 40, "every stored alert delivered", second)
    assert second.stop() == 0
    ids_per_alert: dict[object, set[str]] = {}
    for msg_id, body in hook_bodies(http_server):
        ids_per_alert.setdefault(body["alert_id"], set()).add(msg_id)
    assert set(ids_per_alert) == stored
    assert all(len(ids) == 1 for ids in ids_per_alert.values()), ids_per_alert
    assert len(set(answered)) == len(answered) == len(stored), "each accepted exactly once"


@pytest.mark.timeout(90)
def test_sighup_reschedules_sources_and_refuses_a_broken_config(
    http_server: LoopbackHTTP, tmp_path: Path, daemons: list[Daemon]
) -> None:
    feed = Response(200, {"Content-Type": "application/rss+xml"}, rss(IRRELEVANT, "x"))
    http_server.routes["/old.xml"] = feed
    http_server.routes["/new.xml"] = feed
    http_server.routes["/hook"] = accept
    config = write_config(tmp_path, http_server, [("Old", "/old.xml")])
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    daemon.wait_notify("READY=1")
    wait_for(lambda: http_server.requests_to("/old.xml"), 20, "old source polled", daemon)

    write_config(tmp_path, http_server, [("New", "/new.xml")])
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in daemon.stderr(), 20, "reload", daemon)
    old_count = len(http_server.requests_to("/old.xml"))
    wait_for(lambda: len(http_server.requests_to("/new.xml")) >= 2, 20, "new source polled", daemon)
    assert len(http_server.requests_to("/old.xml")) <= old_count + 1

    config.write_text(config.read_text().replace("every: 2s", "every: 2x"))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in daemon.stderr(), 20, "refusal", daemon)
    line = (
        config.read_text()
        .splitlines()
        .index(next(ln for ln in config.read_text().splitlines() if "every: 2x" in ln))
        + 1
    )
    assert f"{config}:{line}: sources[0].every" in daemon.stderr()
    seen = len(http_server.requests_to("/new.xml"))
    wait_for(
        lambda: len(http_server.requests_to("/new.xml")) > seen,
        20,
        "still polling after a refused reload",
        daemon,
    )
    assert daemon.stop() == 0
