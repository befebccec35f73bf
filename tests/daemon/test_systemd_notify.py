"""sd_notify against a real Unix datagram socket standing in for systemd."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchtower.systemd import Notifier


def _fields(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.split("\n"))


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    path = Path("/tmp") / f"wt-notify-{uuid.uuid4().hex[:12]}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    try:
        yield str(path), sock
    finally:
        sock.close()
        path.unlink(missing_ok=True)


def test_messages_reach_the_socket(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    with Notifier.from_env({"NOTIFY_SOCKET": path}) as n:
        assert n.enabled
        assert n.ready(status="polling 3 sources")
        assert _fields(sock) == {"READY": "1", "STATUS": "polling 3 sources"}
        assert n.watchdog()
        assert _fields(sock) == {"WATCHDOG": "1"}
        assert n.status("12 alerts, 0 sources failing")
        assert _fields(sock) == {"STATUS": "12 alerts, 0 sources failing"}
        assert n.stopping()
        assert _fields(sock) == {"STOPPING": "1"}


def test_tmp_path_socket(tmp_path: Path) -> None:
    """The brief's setup: a datagram socket bound inside the test's own tmp_path."""
    path = tmp_path / "notify.sock"
    if len(str(path)) > 100:
        pytest.skip("tmp_path too long for an AF_UNIX address")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        n = Notifier.from_env({"NOTIFY_SOCKET": str(path)})
        assert n.ready()
        assert _fields(sock) == {"READY": "1"}
        n.close()


def test_abstract_socket() -> None:
    name = f"watchtower-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        n = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert _fields(sock) == {"READY": "1"}
        assert n.watchdog()
        assert _fields(sock) == {"WATCHDOG": "1"}
        n.close()


def test_reloading_carries_monotonic_time(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    n = Notifier(path)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.reloading()
    got = _fields(sock)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert got["RELOADING"] == "1"
    assert before <= int(got["MONOTONIC_USEC"]) <= after
    n.close()


def test_status_cannot_inject_fields(notify_socket: tuple[str, socket.socket]) -> None:
    """A feed title in a status line must not smuggle in READY=1 or STOPPING=1."""
    path, sock = notify_socket
    n = Notifier(path)
    assert n.status("last alert: Evil\nSTOPPING=1\r\nREADY=1")
    assert _fields(sock) == {"STATUS": "last alert: Evil STOPPING=1 READY=1"}
    assert not n.notify("STATUS=a\nREADY=1")
    assert not n.notify("garbage")
    n.close()


def test_extend_timeout(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    n = Notifier(path)
    assert n.extend_timeout(25)
    assert _fields(sock) == {"EXTEND_TIMEOUT_USEC": "25000000"}
    n.close()


def test_disabled_without_socket(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="watchtower.systemd"):
        n = Notifier.from_env({})
    assert not n.enabled
    assert "NOTIFY_SOCKET is not set" in caplog.text
    assert n.ready() is False
    assert n.watchdog() is False
    assert n.stopping() is False
    assert n.watchdog_interval() is None


def test_logs_when_enabled(
    notify_socket: tuple[str, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    path, _ = notify_socket
    with caplog.at_level(logging.INFO, logger="watchtower.systemd"):
        Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "60000000"})
    assert "NOTIFY_SOCKET is set" in caplog.text
    assert "every 30s" in caplog.text


def test_unsupported_address_is_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="watchtower.systemd"):
        n = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled
    assert "unsupported" in caplog.text


def test_send_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier("/nonexistent/dir/notify.sock")
    assert n.enabled
    with caplog.at_level(logging.DEBUG, logger="watchtower.systemd"):
        assert n.ready() is False
        assert n.watchdog() is False
    assert "sending READY failed" in caplog.text
    n.close()


def test_receiver_gone_midway(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    n = Notifier(path)
    assert n.ready()
    sock.close()
    os.unlink(path)
    assert n.watchdog() is False  # no exception, just False
    n.close()


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("60000000", None, 30.0),
        ("60000000", "OWN", 30.0),
        ("60000000", "1", None),  # the watchdog belongs to another process
        ("0", None, None),
        ("abc", None, None),
        ("60000000", "xyz", None),
        (None, None, None),
    ],
)
def test_watchdog_interval(usec: str | None, pid: str | None, expected: float | None) -> None:
    env = {"NOTIFY_SOCKET": "@x"}
    if usec is not None:
        env["WATCHDOG_USEC"] = usec
    if pid is not None:
        env["WATCHDOG_PID"] = str(os.getpid()) if pid == "OWN" else pid
    assert Notifier.from_env(env).watchdog_interval() == expected
