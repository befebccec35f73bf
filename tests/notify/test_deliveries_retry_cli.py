"""`deliveries retry` says whether a running service will pick the deliveries up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.test_e2e_run_once import watchtower
from tests.notify.test_notify_support import add_alerts, notify_config, scored, webhook
from tests.support import shipped_baseline_yaml
from watchtower.store import Store


def test_retry_says_whether_a_service_is_running(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/watchtower.db"
    config = tmp_path / "watchtower.yaml"
    config.write_text(
        f"store: {url}\n{shipped_baseline_yaml(tmp_path)}\n"
        "sources:\n  - {name: Daily NK, feed: 'https://news.example.org/feed.xml'}\n"
    )
    notify = notify_config([webhook("https://hooks.example.org/a")])
    with Store.open(url) as store:
        store.sync_sources([("Daily NK", "feed", "https://news.example.org/feed.xml")])
        add_alerts(store, notify, [scored("Daily NK", "g1", 0.9), scored("Daily NK", "g2", 0.9)])
        for job in store.claim_deliveries(datetime.now(UTC)):
            store.mark_dead(job.id, "HTTP 500")

    nobody = watchtower("deliveries", "retry", "--all", "--config", str(config))
    assert nobody.returncode == 0, nobody.stderr
    assert "re-queued 2 deliveries" in nobody.stdout
    assert "no service is running" in nobody.stdout and "run --once" in nobody.stdout

    with Store.open(url) as store:
        for job in store.claim_deliveries(datetime.now(UTC)):
            store.mark_dead(job.id, "HTTP 500")
        store.beat("watch-host", 4242, datetime.now(UTC) - timedelta(seconds=3))
    running = watchtower("deliveries", "retry", "--all", "--config", str(config))
    assert running.returncode == 0, running.stderr
    assert "the service running on watch-host (pid 4242) sends them" in running.stdout

    with Store.open(url) as store:
        store.beat("watch-host", 4242, datetime.now(UTC) - timedelta(hours=2))
        for job in store.claim_deliveries(datetime.now(UTC)):
            store.mark_dead(job.id, "HTTP 500")
    stale = watchtower("deliveries", "retry", "--all", "--config", str(config))
    assert "no service is running on this store (last seen" in stale.stdout
