"""One Watchtower per store: a second daemon or a ``run --once`` beside it refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon.test_daemon_lifecycle import (
    Daemon,
    accept,
    daemons,  # noqa: F401  (fixture)
    hook_bodies,
    wait_for,
    write_config,
)
from tests.e2e.test_e2e_run_once import IRRELEVANT, RELEVANT, rss
from tests.support import ROOT, LoopbackHTTP, Response


def _config(tmp_path: Path, server: LoopbackHTTP, store_url: str) -> Path:
    path = write_config(tmp_path, server, [("A", "/a.xml")])
    lines = path.read_text().splitlines()
    lines[0] = f"store: '{store_url}'"
    path.write_text("\n".join(lines) + "\n")
    return path


def _watchtower(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("NOTIFY_SOCKET", None)
    return subprocess.run(
        [sys.executable, "-m", "watchtower", "run", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )


@pytest.mark.timeout(150)
def test_second_daemon_and_run_once_refuse_while_one_runs(
    http_server: LoopbackHTTP,
    tmp_path: Path,
    daemons: list[Daemon],  # noqa: F811
    store_url: str,
) -> None:
    http_server.routes["/a.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT + IRRELEVANT, "a")
    )
    http_server.routes["/hook"] = accept
    config = _config(tmp_path, http_server, store_url)
    first = Daemon(config, tmp_path)
    daemons.append(first)
    first.wait_notify("READY=1")
    wait_for(lambda: len(hook_bodies(http_server)) >= len(RELEVANT), 40, "first alerts", first)

    for args in ((), ("--once",)):
        second = _watchtower(config, *args)
        assert second.returncode == 2, second.stderr
        assert "in use by another Watchtower" in second.stderr
        assert f"pid={first.proc.pid} " in second.stderr
        assert "host=" in second.stderr and "since=" in second.stderr
        assert "Traceback" not in second.stderr

    assert first.proc.poll() is None, "the running daemon is untouched"
    assert first.stop() == 0
    ids_per_alert: dict[object, set[str]] = {}
    for msg_id, body in hook_bodies(http_server):
        ids_per_alert.setdefault(body["alert_id"], set()).add(msg_id)
    assert len(ids_per_alert) == len(RELEVANT), "no story alerted twice"
    assert all(len(ids) == 1 for ids in ids_per_alert.values()), ids_per_alert

    # Once the daemon is gone the store is free again.
    again = _watchtower(config, "--once")
    assert again.returncode == 0, again.stderr
