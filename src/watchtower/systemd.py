"""systemd service notifications (sd_notify), written against the protocol.

systemd passes ``NOTIFY_SOCKET`` to a ``Type=notify`` service: a Unix datagram socket
(a path, or an abstract name written ``@name``). Each datagram holds newline-separated
``KEY=VALUE`` fields (sd_notify(3)). Watchtower sends ``READY=1`` once it is serving,
``STATUS=…`` as things change, ``WATCHDOG=1`` from the event loop itself (so a stalled
loop misses its pings and systemd restarts it), ``RELOADING=1`` on SIGHUP and
``STOPPING=1`` on shutdown.

The ``sdnotify`` package swallows every error and says nothing when the socket is
missing, so this module talks to the socket itself: it logs once whether
``NOTIFY_SOCKET`` is set, logs send failures at debug level and never raises from a
send. Outside systemd every method is a cheap no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify(3) messages to the service manager, if there is one.

    Build it with :meth:`from_env` (reads ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and
    ``WATCHDOG_PID``). Every sending method returns ``True`` when the datagram was
    handed to the socket, ``False`` when notifications are disabled or the send
    failed; none of them raises. Safe to call from several threads. The socket is
    non-blocking: a full receive queue drops the message instead of stalling the
    event loop.
    """

    def __init__(
        self,
        address: str | None,
        *,
        watchdog_usec: str | None = None,
        watchdog_pid: str | None = None,
    ) -> None:
        self._address = _socket_address(address) if address else None
        self._watchdog = _watchdog_seconds(watchdog_usec, watchdog_pid)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """A notifier for the socket named in the environment (``os.environ`` by default).

        Logs once, at info level, whether ``NOTIFY_SOCKET`` is set, so an operator can
        see why systemd never saw READY=1.
        """
        env = os.environ if environ is None else environ
        notifier = cls(
            env.get("NOTIFY_SOCKET") or None,
            watchdog_usec=env.get("WATCHDOG_USEC"),
            watchdog_pid=env.get("WATCHDOG_PID"),
        )
        if notifier.enabled:
            interval = notifier.watchdog_interval()
            log.info(
                "systemd NOTIFY_SOCKET is set: sending readiness and status%s",
                f", watchdog ping every {interval:g}s" if interval else "",
            )
        elif env.get("NOTIFY_SOCKET"):
            log.warning("systemd NOTIFY_SOCKET has an unsupported address; notifications off")
        else:
            log.info("systemd NOTIFY_SOCKET is not set: service notifications are off")
        return notifier

    @property
    def enabled(self) -> bool:
        """True when there is a usable notification socket."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None.

        None when the watchdog is off, or when ``WATCHDOG_PID`` names another process.
        """
        return self._watchdog

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd start-up (or a reload) is complete: ``READY=1``."""
        return self.notify("READY=1", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        """Tell systemd the service is shutting down: ``STOPPING=1``."""
        return self.notify("STOPPING=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        """Tell systemd a reload began: ``RELOADING=1`` with ``MONOTONIC_USEC``.

        Send :meth:`ready` once the new configuration is in effect (or refused).
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def status(self, text: str) -> bool:
        """Set the one-line status shown by ``systemctl status``: ``STATUS=…``."""
        return self.notify(*_status(text))

    def watchdog(self) -> bool:
        """Keep-alive ping: ``WATCHDOG=1``. Call it from the event loop itself."""
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time to start or stop: ``EXTEND_TIMEOUT_USEC``."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def notify(self, *fields: str) -> bool:
        """Send raw ``KEY=VALUE`` fields in one datagram. Newlines inside are refused."""
        if self._address is None or not fields:
            return False
        if any("\n" in f or "=" not in f for f in fields):
            log.debug("sd_notify: refusing malformed fields %r", fields)
            return False
        data = "\n".join(fields).encode("utf-8", "replace")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                    self._sock.setblocking(False)
                self._sock.sendto(data, self._address)
            except OSError as exc:
                log.debug("sd_notify: sending %s failed: %s", fields[0].split("=")[0], exc)
                return False
        return True

    def close(self) -> None:
        """Close the socket; later sends open a new one."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _socket_address(address: str) -> str | None:
    """``/path`` as is; ``@name`` as the abstract name ``\\0name``; anything else None."""
    if address.startswith("/"):
        return address
    if address.startswith("@") and len(address) > 1:
        return "\0" + address[1:]
    return None  # e.g. "vsock:…" (systemd ≥ 253): not supported here


def _watchdog_seconds(usec: str | None, pid: str | None) -> float | None:
    if not usec:
        return None
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            log.warning("systemd WATCHDOG_PID is not a number; watchdog pings are off")
            return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("systemd WATCHDOG_USEC is not a number; watchdog pings are off")
        return None
    if value <= 0:
        return None
    return value / 2_000_000


def _status(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    one_line = " ".join(text.split())
    return (f"STATUS={one_line}",)
