"""A store that refuses connections: one WARNING per outage, counted, and recovery."""

from __future__ import annotations

import os
import socket
import threading
import time
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
from tests.support import LoopbackHTTP, Response
from watchtower.store import Store

pytestmark = pytest.mark.skipif(
    not os.environ.get("WATCHTOWER_TEST_POSTGRES_URL"), reason="needs PostgreSQL"
)


class TCPProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; ``down()`` refuses and drops connections."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


@pytest.mark.timeout(180)
def test_store_outage_is_one_warning_counted_and_polls_recover(
    http_server: LoopbackHTTP,
    tmp_path: Path,
    daemons: list[Daemon],  # noqa: F811
    store_url: str,
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("the outage is a PostgreSQL server refusing connections")
    proxy = TCPProxy(("127.0.0.1", 5432))
    try:
        _outage_scenario(proxy, http_server, tmp_path, daemons, store_url)
    finally:
        proxy.down()


def _outage_scenario(
    proxy: TCPProxy,
    http_server: LoopbackHTTP,
    tmp_path: Path,
    daemons: list[Daemon],  # noqa: F811
    store_url: str,
) -> None:
    via_proxy = store_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    assert via_proxy != store_url
    http_server.routes["/a.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT[:1] + IRRELEVANT, "a")
    )
    http_server.routes["/hook"] = accept
    config = write_config(tmp_path, http_server, [("A", "/a.xml")], every="1s")
    lines = config.read_text().splitlines()
    lines[0] = f"store: '{via_proxy}'"
    config.write_text("\n".join(lines) + "\n")
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    daemon.wait_notify("READY=1")
    wait_for(lambda: hook_bodies(http_server), 40, "a first alert", daemon)

    proxy.down()
    http_server.routes["/a.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT + IRRELEVANT, "b")
    )
    wait_for(lambda: "store unavailable" in daemon.stderr(), 20, "the outage line", daemon)
    time.sleep(6)  # polls (every 1 s) and deliveries (every 5 s) fail meanwhile
    proxy.up()
    wait_for(lambda: "store available again" in daemon.stderr(), 40, "recovery", daemon)

    def stored() -> int:
        with Store.open(store_url) as store:
            return int(store.counts()["items"])

    wait_for(lambda: stored() >= 2 + len(RELEVANT), 40, "the new items stored", daemon)
    assert daemon.stop() == 0
    err = daemon.stderr()
    warnings = [ln for ln in err.splitlines() if "store unavailable" in ln]
    assert len(warnings) == 1, warnings
    assert "WARNING" in warnings[0] and "store:" in warnings[0]
    assert "Traceback" not in err
    summary = next(ln for ln in err.splitlines() if "watchtower stopped:" in ln)
    assert "in 1 outages" in summary and " 0 store errors" not in summary


@pytest.mark.timeout(180)
def test_daemon_that_lost_its_lock_to_another_stops_with_exit_2(
    http_server: LoopbackHTTP,
    tmp_path: Path,
    daemons: list[Daemon],  # noqa: F811
    store_url: str,
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL session lock ends with its connection")
    proxy = TCPProxy(("127.0.0.1", 5432))
    try:
        http_server.routes["/a.xml"] = Response(
            200, {"Content-Type": "application/rss+xml"}, rss(IRRELEVANT, "a")
        )
        http_server.routes["/hook"] = accept
        config = write_config(tmp_path, http_server, [("A", "/a.xml")], every="1s")
        lines = config.read_text().splitlines()
        direct = list(lines)
        lines[0] = f"store: '{store_url.replace(':5432/', f':{proxy.port}/')}'"
        direct[0] = f"store: '{store_url}'"
        config.write_text("\n".join(lines) + "\n")
        other = tmp_path / "other.yaml"
        other.write_text("\n".join(direct) + "\n")
        os.environ["WATCHTOWER_INSTANCE_CHECK_EVERY"] = "1"
        try:
            first = Daemon(config, tmp_path)
            daemons.append(first)
            first.wait_notify("READY=1")
            proxy.down()  # the first daemon's lock connection is cut: the server drops it
            second = Daemon(other, tmp_path)
            daemons.append(second)
            second.wait_notify("READY=1")
            proxy.up()
        finally:
            del os.environ["WATCHTOWER_INSTANCE_CHECK_EVERY"]
        assert first.proc.wait(60) == 2
        assert "another Watchtower took over the store" in first.stderr()
        assert second.proc.poll() is None, "the one holding the lock goes on"
        assert second.stop() == 0
    finally:
        proxy.down()
