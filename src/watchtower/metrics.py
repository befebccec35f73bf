"""Prometheus metrics: what operators graph and alert on.

Everything lives in a private :class:`~prometheus_client.CollectorRegistry` (nothing is
added to the library's global one). Exported names (all prefixed ``watchtower_``):

=====================================  =========  ==============================================
``watchtower_polls_total``             counter    polls by ``source`` and ``result``
``watchtower_poll_errors_total``       counter    failed polls by ``source``
``watchtower_items_total``             counter    new items stored
``watchtower_alerts_total``            counter    new alerts created
``watchtower_deliveries_total``        counter    delivery attempts by ``channel`` and ``result``
``watchtower_poll_seconds``            histogram  time to poll one source end to end
``watchtower_delivery_seconds``        histogram  time of one delivery attempt
``watchtower_outbox_pending``          gauge      deliveries waiting (pending or sending)
``watchtower_outbox_dead``             gauge      dead letters
``watchtower_sources_failing``         gauge      sources whose last poll failed
``watchtower_store_errors_total``      counter    store operations that failed
``watchtower_store_outages_total``     counter    times the store became unavailable
``watchtower_store_up``                gauge      0 during a store outage, else 1
``watchtower_build_info``              gauge      1, labelled with ``version``
=====================================  =========  ==============================================

plus the standard ``process_*`` metrics (memory, CPU, open files).

Recording functions (:func:`observe_poll`, :func:`observe_delivery`,
:func:`set_backlog`) are cheap no-ops until metrics are enabled (by
:func:`start_metrics_server` or :func:`enable`), so callers never check a flag.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from types import TracebackType
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

from watchtower import __version__
from watchtower.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:9464"

#: Values of the ``result`` label of ``watchtower_polls_total``.
POLL_RESULTS = ("ok", "not-modified", "error", "skipped", "cancelled")

_POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
_DELIVERY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Metrics:
    def __init__(self) -> None:
        reg = self.registry = CollectorRegistry(auto_describe=True)
        ns = "watchtower"
        self.polls = Counter(
            "polls", "Polls by source and result.", ["source", "result"], namespace=ns, registry=reg
        )
        self.poll_errors = Counter(
            "poll_errors", "Failed polls by source.", ["source"], namespace=ns, registry=reg
        )
        self.items = Counter("items", "New items stored.", namespace=ns, registry=reg)
        self.alerts = Counter("alerts", "New alerts created.", namespace=ns, registry=reg)
        self.deliveries = Counter(
            "deliveries",
            "Delivery attempts by channel and result.",
            ["channel", "result"],
            namespace=ns,
            registry=reg,
        )
        self.poll_seconds = Histogram(
            "poll_seconds",
            "Seconds to poll one source end to end.",
            namespace=ns,
            registry=reg,
            buckets=_POLL_BUCKETS,
        )
        self.delivery_seconds = Histogram(
            "delivery_seconds",
            "Seconds of one delivery attempt.",
            namespace=ns,
            registry=reg,
            buckets=_DELIVERY_BUCKETS,
        )
        self.outbox_pending = Gauge(
            "outbox_pending", "Deliveries waiting to be sent.", namespace=ns, registry=reg
        )
        self.outbox_dead = Gauge(
            "outbox_dead", "Deliveries given up on (dead letters).", namespace=ns, registry=reg
        )
        self.sources_failing = Gauge(
            "sources_failing", "Sources whose last poll failed.", namespace=ns, registry=reg
        )
        self.store_errors = Counter(
            "store_errors", "Store operations that failed.", namespace=ns, registry=reg
        )
        self.store_outages = Counter(
            "store_outages", "Times the store became unavailable.", namespace=ns, registry=reg
        )
        self.store_up = Gauge(
            "store_up", "0 while the store is unavailable, else 1.", namespace=ns, registry=reg
        )
        self.store_up.set(1)
        build = Gauge("build_info", "Watchtower version.", ["version"], namespace=ns, registry=reg)
        build.labels(version=__version__).set(1)
        ProcessCollector(registry=reg)


_lock = threading.Lock()
_metrics: _Metrics | None = None  # created once, kept across restarts of the server
_active: _Metrics | None = None  # what the observe_* functions record into


def enable() -> CollectorRegistry:
    """Start recording (idempotent) and return the private registry.

    Values survive :func:`disable` and a later :func:`enable` (e.g. a reload that
    moves the endpoint): counters never go backwards within a process.
    """
    global _metrics, _active
    with _lock:
        if _metrics is None:
            _metrics = _Metrics()
        _active = _metrics
        return _metrics.registry


def disable() -> None:
    """Stop recording; the observe_* functions become no-ops again."""
    global _active
    _active = None


def enabled() -> bool:
    """True while metrics are being recorded."""
    return _active is not None


def observe_poll(
    source: str, result: str, seconds: float, new_items: int = 0, new_alerts: int = 0
) -> None:
    """Record one poll of ``source``.

    ``result`` is one of :data:`POLL_RESULTS` (the pipeline's ``PollReport.status``):
    ``ok`` (fetched and processed), ``not-modified`` (a 304 or unchanged page),
    ``error`` (also counted in ``watchtower_poll_errors_total``), ``skipped`` (backing
    off: counted, but not timed) or ``cancelled`` (cut off by shutdown, nothing
    stored). No-op when metrics are disabled.
    """
    m = _active
    if m is None:
        return
    m.polls.labels(source=source, result=result).inc()
    if result == "error":
        m.poll_errors.labels(source=source).inc()
    if result != "skipped":
        m.poll_seconds.observe(max(0.0, seconds))
    if new_items > 0:
        m.items.inc(new_items)
    if new_alerts > 0:
        m.alerts.inc(new_alerts)


def observe_delivery(channel: str, result: str, seconds: float) -> None:
    """Record one delivery attempt on ``channel`` (``webhook:<key>``, ``email``, ``digest``).

    ``result`` is short and fixed, e.g. ``sent``, ``retry``, ``dead``. No-op when
    metrics are disabled.
    """
    m = _active
    if m is None:
        return
    m.deliveries.labels(channel=channel, result=result).inc()
    m.delivery_seconds.observe(max(0.0, seconds))


def set_backlog(pending: int, dead: int, failing: int) -> None:
    """Set the outbox and source-health gauges. No-op when metrics are disabled."""
    m = _active
    if m is None:
        return
    m.outbox_pending.set(pending)
    m.outbox_dead.set(dead)
    m.sources_failing.set(failing)


def observe_store_error(*, outage_started: bool) -> None:
    """Count one failed store operation; ``outage_started`` also counts an outage and
    sets ``watchtower_store_up`` to 0. No-op when metrics are disabled."""
    m = _active
    if m is None:
        return
    m.store_errors.inc()
    if outage_started:
        m.store_outages.inc()
        m.store_up.set(0)


def set_store_up(up: bool) -> None:
    """Set ``watchtower_store_up``. No-op when metrics are disabled."""
    m = _active
    if m is not None:
        m.store_up.set(1 if up else 0)


class MetricsServer:
    """The running HTTP endpoint. ``close()`` stops it and disables recording."""

    def __init__(self, server: WSGIServer, thread: threading.Thread, host: str, port: int) -> None:
        self._server: WSGIServer | None = server
        self._thread = thread
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving (idempotent) and make the observe_* functions no-ops."""
        disable()
        server = self._server
        if server is None:
            return
        self._server = None
        server.shutdown()
        server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` → (host, port). ``[v6]:port`` for IPv6; a bare ``port`` or ``:port``
    means 127.0.0.1 (never all interfaces). Raises ConfigError when malformed."""
    text = listen.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise _bad_listen(listen)
    elif text.count(":") > 1:
        raise _bad_listen(listen)  # IPv6 must be bracketed: [::1]:9464
    else:
        host, _, port_text = text.rpartition(":")
    host = host or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise _bad_listen(listen) from None
    if not 0 <= port <= 65535 or not host:
        raise _bad_listen(listen)
    return host, port


def _bad_listen(listen: str) -> ConfigError:
    return ConfigError(
        f"metrics.listen: {listen!r} is not host:port "
        f"(expected e.g. {DEFAULT_LISTEN}, [::1]:9464 or 9464)"
    )


def is_loopback(host: str) -> bool:
    """True when every address ``host`` stands for is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if host.lower() == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def start_metrics_server(listen: str = DEFAULT_LISTEN) -> MetricsServer:
    """Serve ``/metrics`` on exactly ``listen`` and enable recording.

    Binds only the given address; a missing host means 127.0.0.1. A non-loopback
    address (e.g. ``0.0.0.0:9464``) is bound only because it was written out, and a
    warning says the endpoint is reachable from other machines. Port 0 picks a free
    port (see ``.port``). Raises ConfigError when ``listen`` is malformed or cannot
    be bound (address in use, not an address of this host).
    """
    host, port = parse_listen(listen)
    if not is_loopback(host):
        log.warning(
            "metrics endpoint binds %s, which is not loopback: other machines can read it "
            "(put a firewall or reverse proxy in front)",
            host,
        )
    registry = enable()
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        disable()
        raise ConfigError(
            f"metrics.listen: cannot listen on {listen}: {exc.strerror or exc}"
        ) from exc
    bound_host, bound_port = server.server_address[:2]
    running = MetricsServer(server, thread, str(bound_host), int(bound_port))
    log.info("metrics endpoint at %s", running.url)
    return running


def registry() -> CollectorRegistry:
    """The private registry (created on first use) — for tests and custom exporters."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = _Metrics()
        return _metrics.registry
