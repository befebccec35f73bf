"""The Prometheus endpoint as an operator scrapes it."""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from watchtower import metrics
from watchtower.errors import ConfigError


@pytest.fixture(autouse=True)
def _disabled() -> Iterator[None]:
    metrics.disable()
    yield
    metrics.disable()


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def _value(name: str, **labels: str) -> float:
    return metrics.registry().get_sample_value(name, labels) or 0.0


def test_scrape_shows_what_was_recorded() -> None:
    items0 = _value("watchtower_items_total")
    alerts0 = _value("watchtower_alerts_total")
    polls0 = _value("watchtower_poll_seconds_count")
    with metrics.start_metrics_server("127.0.0.1:0") as server:
        assert server.host == "127.0.0.1" and server.port > 0
        metrics.observe_poll("Scrape feed", "ok", 0.3, new_items=4, new_alerts=2)
        metrics.observe_poll("Scrape feed", "not-modified", 0.05)
        metrics.observe_poll("Scrape broken", "error", 20.0)
        metrics.observe_poll("Scrape broken", "skipped", 0.0)  # backing off: not timed
        metrics.observe_delivery("webhook:ops", "sent", 0.12)
        metrics.observe_delivery("webhook:ops", "retry", 10.0)
        metrics.observe_delivery("email", "sent", 0.4)
        metrics.set_backlog(pending=7, dead=1, failing=2)
        got = _scrape(server.url)

    def v(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    assert v("watchtower_polls_total", source="Scrape feed", result="ok") == 1
    assert v("watchtower_polls_total", source="Scrape feed", result="not-modified") == 1
    assert v("watchtower_polls_total", source="Scrape broken", result="error") == 1
    assert v("watchtower_polls_total", source="Scrape broken", result="skipped") == 1
    assert v("watchtower_poll_errors_total", source="Scrape broken") == 1
    assert ("watchtower_poll_errors_total", (("source", "Scrape feed"),)) not in got
    assert v("watchtower_items_total") == items0 + 4
    assert v("watchtower_alerts_total") == alerts0 + 2
    assert v("watchtower_poll_seconds_count") == polls0 + 3
    assert v("watchtower_poll_seconds_bucket", le="0.1") >= 1
    assert v("watchtower_deliveries_total", channel="webhook:ops", result="sent") >= 1
    assert v("watchtower_deliveries_total", channel="webhook:ops", result="retry") >= 1
    assert v("watchtower_deliveries_total", channel="email", result="sent") >= 1
    assert v("watchtower_delivery_seconds_count") >= 3
    assert v("watchtower_outbox_pending") == 7
    assert v("watchtower_outbox_dead") == 1
    assert v("watchtower_sources_failing") == 2
    assert v("watchtower_build_info", version=metrics.__version__) == 1
    assert any(name.startswith("process_") for name, _ in got)
    # The private registry only: nothing from prometheus_client's global defaults.
    assert not any(name.startswith("python_gc") for name, _ in got)


def test_recording_is_a_no_op_when_disabled() -> None:
    before = _value("watchtower_polls_total", source="Quiet feed", result="ok")
    assert not metrics.enabled()
    metrics.observe_poll("Quiet feed", "ok", 1.0, new_items=3)
    metrics.observe_delivery("email", "sent", 1.0)
    metrics.set_backlog(1, 1, 1)
    assert _value("watchtower_polls_total", source="Quiet feed", result="ok") == before


def test_close_stops_serving_and_recording_and_values_survive_a_restart() -> None:
    server = metrics.start_metrics_server("127.0.0.1:0")
    metrics.observe_poll("Restart feed", "ok", 0.1)
    url = server.url
    server.close()
    server.close()  # idempotent
    assert not metrics.enabled()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)
    metrics.observe_poll("Restart feed", "ok", 0.1)  # dropped: disabled
    with metrics.start_metrics_server("127.0.0.1:0") as again:
        metrics.observe_poll("Restart feed", "ok", 0.1)
        got = _scrape(again.url)
    key = ("watchtower_polls_total", (("result", "ok"), ("source", "Restart feed")))
    assert got[key] == 2


@pytest.mark.parametrize("listen", ["0", ":0", " :0 "])
def test_missing_host_means_loopback_not_all_interfaces(listen: str) -> None:
    with metrics.start_metrics_server(listen) as server:
        assert server.host == "127.0.0.1"
        assert _scrape(server.url)


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = metrics.start_metrics_server("[::1]:0")
    except ConfigError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    with server:
        assert server.host == "::1"
        assert server.url.startswith("http://[::1]:")
        assert _scrape(server.url)


def test_explicit_non_loopback_binds_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="watchtower.metrics"):
        with metrics.start_metrics_server("0.0.0.0:0") as server:
            assert server.host == "0.0.0.0"
            assert _scrape(f"http://127.0.0.1:{server.port}/metrics")
    assert "not loopback" in caplog.text


def test_loopback_gives_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="watchtower.metrics"):
        metrics.start_metrics_server("localhost:0").close()
    assert "not loopback" not in caplog.text


@pytest.mark.parametrize(
    "listen", ["abc", "127.0.0.1:", "127.0.0.1:http", "::1:9464", "[::1]9464", "1.2.3.4:70000"]
)
def test_malformed_listen_is_a_config_error(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"metrics\.listen: .* is not host:port"):
        metrics.start_metrics_server(listen)
    assert not metrics.enabled()


def test_port_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            metrics.start_metrics_server(f"127.0.0.1:{port}")
    assert not metrics.enabled()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("localhost", True)]
    + [("0.0.0.0", False), ("::", False), ("192.168.1.5", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert metrics.is_loopback(host) is loopback
