"""`run --once` delivers everything due before it exits, and nothing twice.

Sixty alerts in one pass (more than one claim of the outbox), to a webhook and an
Apprise ``json://`` channel on loopback; then a second run over the unchanged feeds.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.e2e.test_e2e_run_once import watchtower
from tests.notify.test_notify_support import SECRET
from tests.support import LoopbackHTTP, Response, shipped_baseline_yaml

WORDS = (
    "harbour lantern meadow copper violin glacier orchard falcon tundra marble canyon "
    "saffron pylon quarry beacon thistle walrus basalt cobalt ember fjord gazelle hemlock "
    "indigo juniper kestrel lagoon mosaic nectar obsidian pepper quartz raven sequoia "
    "tangerine umber velvet willow yarrow zephyr almond birch cedar dune estuary fennel "
    "granite heron iris jasmine kelp lichen magnet nutmeg olive prism quill reed sorrel"
).split()


def baseline_without_threshold(tmp_path: Path) -> str:
    lines = shipped_baseline_yaml(tmp_path).splitlines()
    return "".join(line + "\n" for line in lines if not line.startswith("alerts:"))


def feed(prefix: str, count: int, rng: random.Random) -> bytes:
    items = []
    for n in range(count):
        words = " ".join(rng.sample(WORDS, 14))
        items.append(
            f"<item><title>{prefix} {n}: {words[:40]}</title>"
            f"<link>https://news.example.org/{prefix}/{n}</link><guid>{prefix}-{n}</guid>"
            f"<description>{words}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{prefix}</title><link>https://news.example.org/</link>"
        f"<description>test</description>{''.join(items)}</channel></rss>"
    ).encode()


def test_run_once_twice_delivers_every_alert_in_the_first_run_only(
    http_server: LoopbackHTTP, tmp_path: Path
) -> None:
    rng = random.Random(13)
    for name in ("a", "b", "c"):
        body = feed(name, 20, rng)
        http_server.routes[f"/{name}.xml"] = Response(
            200, {"Content-Type": "application/rss+xml"}, body
        )
    http_server.routes["/hook"] = Response(204, {}, b"")
    http_server.routes["/apprise"] = Response(200, {}, b"{}")
    host = http_server.base.removeprefix("http://")
    config = tmp_path / "watchtower.yaml"
    config.write_text(
        f"store: sqlite:///{tmp_path}/watchtower.db\n"
        + baseline_without_threshold(tmp_path)
        + "alerts: {threshold: 0.0}\n"
        "fetch: {allow_private_addresses: true, timeout: 10s}\n"
        "sources:\n"
        + "".join(
            f"  - {{name: Feed {n}, feed: '{http_server.url(f'/{n}.xml')}'}}\n" for n in "abc"
        )
        + "notify:\n"
        f"  webhooks: [{{url: '{http_server.url('/hook')}', secret: '{SECRET}', min_score: 0}}]\n"
        f"  apprise: [{{url: 'json://{host}/apprise', min_score: 0}}]\n"
    )

    first = watchtower("run", "--once", "--config", str(config), timeout=120)
    assert first.returncode == 0, first.stderr
    hook_ids = [json.loads(r.body)["alert_id"] for r in http_server.requests_to("/hook")]
    titles = [json.loads(r.body)["title"] for r in http_server.requests_to("/apprise")]
    assert len(hook_ids) == len(set(hook_ids)) == 60, "every alert, once"
    assert len(titles) == len(set(titles)) == 60
    assert "not sent yet" not in first.stderr

    second = watchtower("run", "--once", "--config", str(config), timeout=120)
    assert second.returncode == 0, second.stderr
    assert len(http_server.requests_to("/hook")) == 60, "nothing in the second run"
    assert len(http_server.requests_to("/apprise")) == 60
